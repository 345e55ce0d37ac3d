"""Readers of the JSB Chorales files (Bach's four-part chorales), verified by SHA-256.

Two forms of the same 382 chorales, split train 229 / valid 76 / test 77
(Boulanger-Lewandowski et al. 2012), as published in czhuang/JSB-Chorales-dataset:

  piano rolls   `jsb-chorales-{quarter,8th,16th}.json`: per time step the sorted MIDI
                pitches sounding (the polyphonic-music benchmark form)
  four voices   `Jsb16thSeparated.json`: per 16th-note step the pitch of soprano, alto,
                tenor and bass, -1 where a voice rests (the Coconet form)

Only the JSON files are read (the pickles of the same data would need unpickling). The
resolutions list their pieces in different orders and keys, so pieces cannot be paired
across files by position (shared/data/README.md). Missing files are downloaded from the
upstream repository at a fixed commit; offline, one error says where to put them.
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from genjax.config import ConfigError
from genjax.data.files import DataError, FileSpec, fetch_all, resolve_data_dir

DATASET_DIR = 'jsb-chorales'
SPLITS = ('train', 'valid', 'test')
RESOLUTIONS = ('quarter', '8th', '16th')
STEPS_PER_QUARTER = {'quarter': 1, '8th': 2, '16th': 4}
NUM_VOICES = 4
VOICES_FILE = 'Jsb16thSeparated.json'

_SHA256 = {  # of the files as published (shared/data/README.md)
  'jsb-chorales-quarter.json': '2db9329f1881a1d3f49703ec556bf1d6f84b4f6c1d702c156536e93cf31e1c91',
  'jsb-chorales-8th.json': '88fb80b22829a815e8105da538d94ae803773158507e2145938351f35142390a',
  'jsb-chorales-16th.json': '8730aca7b64e7d29493733d1cf19fad4a5b351d8f1845e57dac27728104fd39f',
  VOICES_FILE: '79294cc374f9252e95ef4b703161524c1c53dc1f712c236f00f1c1f5d54af5a7',
}
_URL = (
  'https://raw.githubusercontent.com/czhuang/JSB-Chorales-dataset/'
  '9a7f733ddb4ed91f48da64ac7f0f621c34aadd4d/'
)

Chorale = list[tuple[int, ...]]  # one sorted tuple of MIDI pitches per time step


def roll_file(resolution: str) -> str:
  """The piano-roll file of a resolution ('quarter', '8th', '16th')."""
  if resolution not in RESOLUTIONS:
    raise ConfigError(
      f'JSB Chorales resolution {resolution!r} does not exist: use one of {RESOLUTIONS}.'
    )
  return f'jsb-chorales-{resolution}.json'


def dataset_files(names: tuple[str, ...] | None = None) -> dict[str, FileSpec]:
  """File name -> (sha256, URLs) for `names` (default: every JSON file of the dataset)."""
  names = tuple(_SHA256) if names is None else names
  return {name: (_SHA256[name], (_URL + name,)) for name in names}


def _fetch(data_dir: str | os.PathLike | None, name: str) -> pathlib.Path:
  # Only the file asked for: a reader of the quarter-note rolls needs no 16th-note file.
  return fetch_all(resolve_data_dir(data_dir), DATASET_DIR, dataset_files((name,)))[name]


def _read_splits(path: pathlib.Path) -> dict[str, list]:
  """The train/valid/test lists of a verified JSON file."""
  with open(path, encoding='utf-8') as f:
    data = json.load(f)
  # The checksum passed, so a failure here means the expected hashes were edited.
  if not isinstance(data, dict) or set(data) != set(SPLITS):
    raise DataError(
      f'{path} does not hold the splits {SPLITS}; replace it with the published file.'
    )
  return {split: data[split] for split in SPLITS}


def read_piano_rolls(
  data_dir: str | os.PathLike | None, resolution: str
) -> dict[str, list[Chorale]]:
  """The chorales of each split as lists of time steps, each a sorted tuple of pitches.

  Args:
    data_dir: the data root (None: $GENJAX_DATA_DIR, else ~/.cache/genjax); the files are
      under `<data_dir>/jsb-chorales/`.
    resolution: 'quarter', '8th' or '16th' (1, 2 or 4 steps a quarter note).

  Returns:
    {'train': 229 chorales, 'valid': 76, 'test': 77}; an empty tuple is a silent step.
    The 8th and 16th files list a step's pitches voice by voice, so two voices in unison
    repeat a pitch (8% of their steps); here, as on a piano roll, a step is the set of
    keys sounding, and a unison is one key.
  """
  splits = _read_splits(_fetch(data_dir, roll_file(resolution)))
  return {
    split: [[tuple(sorted({int(p) for p in step})) for step in chorale] for chorale in chorales]
    for split, chorales in splits.items()
  }


def read_voices(data_dir: str | os.PathLike | None) -> dict[str, list[np.ndarray]]:
  """The chorales of each split at 16th-note resolution, one pitch per voice.

  Returns:
    {'train': 229 arrays, 'valid': 76, 'test': 77}, each int16 [T, 4] with columns
    soprano, alto, tenor, bass and -1 where the voice rests.
  """
  path = _fetch(data_dir, VOICES_FILE)
  splits = _read_splits(path)
  out = {}
  for split, chorales in splits.items():
    arrays = [np.asarray(chorale, dtype=np.int16).reshape(-1, NUM_VOICES) for chorale in chorales]
    out[split] = arrays
  return out
