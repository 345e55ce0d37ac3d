"""Bach's chorales (JSB Chorales) as piano rolls or as four interleaved voices.

Two datasets read the files of `genjax.data.jsb_files` (checked by SHA-256):

- 'jsb_chorales': the piano rolls of Boulanger-Lewandowski et al. (2012), the polyphonic
  music benchmark, at `data.resolution` 'quarter' (the benchmark's), '8th' or '16th'.
  Each chorale is one example: `roll` uint8 [max_steps, 88] (piano keys MIDI 21..108)
  and `frame_mask` bool [max_steps] (its real steps). A chorale longer than
  `data.max_steps` is cut into consecutive parts (none at the quarter-note default).
- 'jsb_voices': Coconet's four voices at 16th notes (`Jsb16thSeparated`), each step four
  tokens, soprano, alto, tenor, bass, as a token stream for the decoder LM
  (`VoiceVocabulary`). Each chorale starts with a step of four `<start>` tokens, so that
  a step's soprano sits at a multiple of 4 in the stream and training windows start
  there. With `data.hold_tokens` a voice that keeps its pitch writes `<hold>` (the data
  does not tell a held note from a repeated one: both become `<hold>`).

Both use the published splits: 'train' (229 chorales), 'valid' (76) as the split the loop
watches ('test' in the Dataset, as for every family) and the published 'test' (77) as
'final_test', which `launch.evaluate` reports. `data.transpose` (semitones, 0 = off) is
the largest random transposition the family applies to training examples.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.data import jsb_files, midi
from genjax.data.files import DataError
from genjax.data.spec import Dataset, DataSpec, Feature
from genjax.data.text import WindowSource

VOICES = ('soprano', 'alto', 'tenor', 'bass')
# The Dataset's split names for the published ones.
SPLITS = {'train': 'train', 'test': 'valid', 'final_test': 'test'}
SECONDS_PER_QUARTER = 0.6  # 100 beats a minute: how samples are played back
VOICE_RANGE = (36, 81)  # the lowest and highest pitch of any voice in Jsb16thSeparated


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  if c.data.name == 'jsb_chorales':
    config_lib.add_fields(
      c,
      {
        'data.resolution': 'quarter',  # one of jsb_files.RESOLUTIONS
        'data.max_steps': 160,  # steps a training example holds: the longest quarter chorale
        'data.transpose': 0,  # largest random transposition of training chorales (semitones)
      },
    )
  else:
    config_lib.add_fields(
      c,
      {
        'data.block_size': 512,  # tokens per window (128 steps of 4 voices)
        'data.hold_tokens': False,  # <hold> where a voice keeps its pitch
        # Training windows start at chorale steps that are multiples of this (4: on a
        # quarter note, as evaluation's and the sampler's windows do).
        'data.start_every': 1,
        'data.transpose': 0,  # largest random transposition of training windows (semitones)
      },
    )


def seconds_per_step(resolution: str) -> float:
  return SECONDS_PER_QUARTER / jsb_files.STEPS_PER_QUARTER[resolution]


# ---------------------------------------------------------------- piano rolls


def _chunks(roll: np.ndarray, length: int) -> list[np.ndarray]:
  return [roll[start : start + length] for start in range(0, len(roll), length)]


def roll_arrays(rolls: list[np.ndarray], max_steps: int) -> dict[str, np.ndarray]:
  """Pieces (bool [T, 88]) padded into `roll` uint8 [N, max_steps, 88] and `frame_mask`."""
  parts = [part for roll in rolls for part in _chunks(roll, max_steps)]
  out = np.zeros((len(parts), max_steps, midi.NUM_KEYS), np.uint8)
  mask = np.zeros((len(parts), max_steps), bool)
  for i, part in enumerate(parts):
    out[i, : len(part)] = part
    mask[i, : len(part)] = True
  return {'roll': out, 'frame_mask': mask}


def piano_roll_dataset(data: ml_collections.ConfigDict) -> Dataset:
  if data.resolution not in jsb_files.RESOLUTIONS:
    raise ConfigError(
      f'config.data.resolution={data.resolution!r} is not one of {jsb_files.RESOLUTIONS}.'
    )
  if data.max_steps < 1:
    raise ConfigError(f'config.data.max_steps must be positive, got {data.max_steps}.')
  pieces = jsb_files.read_piano_rolls(data.dir, data.resolution)
  splits = {
    ours: roll_arrays([midi.roll_from_steps(p) for p in pieces[theirs]], data.max_steps)
    for ours, theirs in SPLITS.items()
  }
  spec = DataSpec(
    {
      'roll': Feature((data.max_steps, midi.NUM_KEYS), 'uint8'),
      'frame_mask': Feature((data.max_steps,), 'bool'),
    }
  )
  return Dataset(spec, splits, extras={'seconds_per_step': seconds_per_step(data.resolution)})


# ---------------------------------------------------------------- four voices


@dataclasses.dataclass(frozen=True)
class VoiceVocabulary:
  """Tokens of the four-voice stream: `<start>`, `<rest>`, `<hold>`, then one per pitch
  from `low` to `high` (the data's range widened by the largest transposition)."""

  low: int
  high: int
  hold_tokens: bool = False

  START, REST, HOLD = 0, 1, 2
  FIRST_PITCH = 3

  @property
  def size(self) -> int:
    return self.FIRST_PITCH + self.high - self.low + 1

  def encode(self, voices: np.ndarray) -> np.ndarray:
    """int [T, 4] pitches (-1 rest) -> int32 [4 (T + 1)]: a start step, then the steps."""
    voices = np.asarray(voices, np.int64)
    sounding = voices >= 0
    outside = sounding & ((voices < self.low) | (voices > self.high))
    if outside.any():
      step, voice = np.argwhere(outside)[0]
      raise ConfigError(
        f'{VOICES[voice]} {midi.note_name(int(voices[step, voice]))} at step {step} is '
        f'outside the model\'s range {midi.note_name(self.low)}..{midi.note_name(self.high)}.'
      )
    tokens = np.where(sounding, voices - self.low + self.FIRST_PITCH, self.REST)
    if self.hold_tokens:
      held = sounding[1:] & (voices[1:] == voices[:-1])
      tokens[1:][held] = self.HOLD
    start = np.full((1, len(VOICES)), self.START)
    return np.concatenate([start, tokens]).reshape(-1).astype(np.int32)

  def decode(self, tokens: np.ndarray) -> np.ndarray:
    """int [4 T] tokens of whole steps (no start step) -> int [T, 4] pitches, -1 rest.

    `<hold>` repeats the voice's pitch before it; a stray `<start>` or a `<hold>` with
    nothing before it is a rest."""
    tokens = np.asarray(tokens, np.int64).reshape(-1, len(VOICES))
    voices = np.where(tokens >= self.FIRST_PITCH, tokens - self.FIRST_PITCH + self.low, -1)
    for t in range(1, len(voices)):
      hold = tokens[t] == self.HOLD
      voices[t, hold] = voices[t - 1, hold]
    return voices


def vocabulary(data: ml_collections.ConfigDict) -> VoiceVocabulary:
  """The vocabulary a jsb_voices config trains with (the data's range, 36..81, widened)."""
  if data.transpose < 0:
    raise ConfigError(f'config.data.transpose must be >= 0, got {data.transpose}.')
  low, high = VOICE_RANGE
  return VoiceVocabulary(low - data.transpose, high + data.transpose, data.hold_tokens)


class StepWindowSource(WindowSource):
  """Random windows of the voice stream that start at a chorale's step 0, `every`,
  2 `every`, ... (its start step is step 0), so with `every` = 4 every window starts on
  a quarter note and the model's learned positions carry the beat."""

  def __init__(self, tokens, piece_lengths, block_size, batch_size, seed, every=1):
    super().__init__(tokens, block_size, batch_size, seed)
    offsets = np.cumsum([0, *piece_lengths[:-1]])
    stride = every * len(VOICES)
    allowed = np.concatenate([np.arange(o, o + n, stride) for o, n in zip(offsets, piece_lengths)])
    self._allowed = allowed[allowed < len(tokens) - block_size - 1]

  def starts(self, step: int) -> np.ndarray:
    rng = np.random.default_rng([self.seed, step])
    return self._allowed[rng.integers(0, len(self._allowed), size=self.batch_size)]


def step_windows(stream: np.ndarray, piece_lengths: list[int], block_size: int) -> np.ndarray:
  """int32 [N, block_size + 1]: the windows that start at each chorale's start and every
  block_size tokens into it (the loop's watched validation loss; a window may run on
  into the next chorale). They start where evaluation's do, on a chorale's step 0,
  128, ... (block_size 512), so a model trained with `start_every` reads its beat."""
  offsets = np.cumsum([0, *piece_lengths[:-1]])
  starts = np.concatenate([np.arange(o, o + n, block_size) for o, n in zip(offsets, piece_lengths)])
  starts = starts[starts + block_size + 1 <= len(stream)]
  return stream[starts[:, None] + np.arange(block_size + 1)].astype(np.int32)


def voices_dataset(data: ml_collections.ConfigDict) -> Dataset:
  if data.start_every < 1:
    raise ConfigError(f'config.data.start_every must be positive, got {data.start_every}.')
  multiple = 8 * data.start_every
  if data.block_size < multiple or data.block_size % multiple:
    # Windows, and evaluation's and the sampler's half-window slides, start at a step
    # that is a multiple of start_every.
    raise ConfigError(
      f'config.data.block_size must be a positive multiple of 8 * data.start_every = '
      f'{multiple}, got {data.block_size}.'
    )
  vocab = vocabulary(data)
  pieces = jsb_files.read_voices(data.dir)
  encoded = {ours: [vocab.encode(p) for p in pieces[theirs]] for ours, theirs in SPLITS.items()}
  streams = {split: np.concatenate(parts) for split, parts in encoded.items()}
  if len(streams['test']) < data.block_size + 1:
    raise DataError(f'The validation stream is shorter than one window of {data.block_size}.')
  spec = DataSpec({'tokens': Feature((data.block_size + 1,), 'int32', num_values=vocab.size)})
  lengths = {split: [len(part) for part in parts] for split, parts in encoded.items()}
  splits = {
    split: {'tokens': step_windows(streams[split], lengths[split], data.block_size)}
    for split in ('train', 'test')
  }
  return Dataset(
    spec,
    splits,
    source=lambda batch_size, seed: StepWindowSource(
      streams['train'],
      lengths['train'],
      data.block_size,
      batch_size,
      seed,
      every=data.start_every,
    ),
    extras={
      'pieces': {ours: pieces[theirs] for ours, theirs in SPLITS.items()},
      'seconds_per_step': seconds_per_step('16th'),
    },
  )


def dataset(data: ml_collections.ConfigDict, workdir: str | None = None) -> Dataset:
  del workdir  # nothing is derived from the training data
  if data.name == 'jsb_chorales':
    return piano_roll_dataset(data)
  return voices_dataset(data)
