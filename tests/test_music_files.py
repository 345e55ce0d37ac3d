"""Tests for genjax.data.jsb_files: the JSB Chorales readers, their counts and checksums."""

import shutil

import numpy as np
import pytest

from genjax.config import ConfigError
from genjax.data import files, jsb_files
from genjax.data.files import DataError

# Chorales per split (Boulanger-Lewandowski et al. 2012), every file and resolution.
COUNTS = {'train': 229, 'valid': 76, 'test': 77}
# Time steps of the test split (shared/data/README.md).
TEST_STEPS = {'quarter': 4725, '8th': 9450, '16th': 18900}


@pytest.mark.parametrize('resolution', jsb_files.RESOLUTIONS)
def test_piano_rolls_have_the_published_splits(resolution):
  rolls = jsb_files.read_piano_rolls(None, resolution)
  assert {split: len(chorales) for split, chorales in rolls.items()} == COUNTS
  assert sum(len(chorale) for chorale in rolls['test']) == TEST_STEPS[resolution]
  steps = [step for chorale in rolls['test'] for step in chorale]
  # Sorted keys, a unison of two voices (listed twice in the 8th/16th files) once.
  assert all(isinstance(s, tuple) and list(s) == sorted(set(s)) for s in steps)
  assert all(isinstance(p, int) for p in steps[0])


def test_quarter_first_test_chorale():
  rolls = jsb_files.read_piano_rolls(None, 'quarter')
  assert len(rolls['test'][0]) == 84
  # The first test chorale opens on a C major chord (as stored: not in Bach's key).
  assert rolls['test'][0][0] == (72, 76, 79, 84)


def test_voices_are_four_columns_with_rests_as_minus_one():
  voices = jsb_files.read_voices(None)
  assert {split: len(chorales) for split, chorales in voices.items()} == COUNTS
  every = np.concatenate([a for chorales in voices.values() for a in chorales])
  assert all(a.dtype == np.int16 and a.ndim == 2 and a.shape[1] == 4 for a in voices['test'])
  assert sum(len(a) for a in voices['test']) == TEST_STEPS['16th']
  sounding = every[every >= 0]
  assert (sounding.min(), sounding.max()) == (36, 81)
  assert set(np.unique(every[every < 0])) == {-1}


def test_unknown_resolution_names_the_choices():
  with pytest.raises(ConfigError, match=r"'32nd'.*quarter.*8th.*16th"):
    jsb_files.read_piano_rolls(None, '32nd')


def test_corrupted_file_is_refused_naming_the_checksum(tmp_path, offline):
  jsb_files.read_piano_rolls(None, 'quarter')  # present (downloaded when online)
  name = 'jsb-chorales-quarter.json'
  source = files.resolve_data_dir(None) / 'jsb-chorales'
  dest = tmp_path / 'jsb-chorales' / name
  dest.parent.mkdir()
  shutil.copyfile(source / name, dest)
  raw = bytearray(dest.read_bytes())
  raw[1000] ^= 0x01  # one bit
  dest.write_bytes(bytes(raw))
  with pytest.raises(DataError) as err:
    jsb_files.read_piano_rolls(tmp_path, 'quarter')
  msg = str(err.value)
  assert 'Checksum mismatch' in msg and str(dest) in msg
  assert jsb_files.dataset_files()[name][0] in msg  # the expected hash
  assert files.sha256_of(dest) in msg  # the actual hash
  assert not offline  # reported, not silently downloaded again


def test_missing_file_offline_says_where_to_put_it(tmp_path, offline):
  with pytest.raises(DataError) as err:
    jsb_files.read_voices(tmp_path)
  msg = str(err.value)
  assert "Dataset 'jsb-chorales': 1 file(s) missing under" in msg
  assert str(tmp_path / 'jsb-chorales' / 'Jsb16thSeparated.json') in msg
  url = (
    'https://raw.githubusercontent.com/czhuang/JSB-Chorales-dataset/'
    '9a7f733ddb4ed91f48da64ac7f0f621c34aadd4d/Jsb16thSeparated.json'
  )
  assert url in msg and offline == [url]
  assert not (tmp_path / 'jsb-chorales').exists()
