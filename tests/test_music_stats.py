"""Tests for genjax.evaluation.music_stats on constructed examples and a real chorale."""

import json

import numpy as np
import pytest

from genjax.data import jsb_files
from genjax.evaluation import music_stats

R = -1  # a rest


def _chords(*chords, steps: int = 4) -> np.ndarray:
  """int [len(chords) * steps, 4]: each (S, A, T, B) chord held `steps` 16th steps."""
  return np.repeat(np.array(chords, dtype=np.int64), steps, axis=0)


# I IV V I, with the chords' roots in the bass.
C_MAJOR_CADENCE = _chords((72, 67, 64, 48), (72, 69, 65, 53), (71, 67, 62, 43), (72, 67, 64, 48))
G_MAJOR_CADENCE = _chords((71, 67, 62, 43), (72, 67, 64, 48), (74, 69, 66, 50), (71, 67, 62, 43))


def test_key_names():
  assert music_stats.key_name(7, 'major') == 'G major'
  assert music_stats.key_name(6, 'minor') == 'F# minor'
  assert music_stats.key_name(10, 'major') == 'Bb major'


def test_key_of_constructed_cadences():
  tonic, mode, r = music_stats.key_of(C_MAJOR_CADENCE)
  assert music_stats.key_name(tonic, mode) == 'C major' and r > 0.8
  assert music_stats.key_name(*music_stats.key_of(G_MAJOR_CADENCE)[:2]) == 'G major'
  # A minor: i iv V i with the raised 7th (G#) in V.
  a_minor = _chords((76, 72, 69, 45), (77, 72, 69, 50), (76, 71, 68, 52), (76, 72, 69, 45))
  assert music_stats.key_name(*music_stats.key_of(a_minor)[:2]) == 'A minor'


def test_find_key_weighs_durations():
  # A C major scale, with A held long enough to pull the key to A minor.
  scale = [(p, 1) for p in (60, 62, 64, 65, 67, 69, 71, 72)]
  assert music_stats.find_key(scale)[:2] == (0, 'major')
  assert music_stats.find_key(scale + [(69, 6), (64, 3)])[:2] == (9, 'minor')
  with pytest.raises(ValueError, match='more than one pitch class'):
    music_stats.find_key([])


def test_key_of_a_real_chorale():
  chorale = jsb_files.read_voices(None)['test'][0]
  tonic, mode, r = music_stats.key_of(chorale)
  # Checked by hand: the piece opens and closes on F major chords (F3 C4 A3 F4 ...
  # F2 A3 C4 F4), bass on F.
  assert (music_stats.key_name(tonic, mode), round(r, 3)) == ('F major', 0.917)
  assert chorale[0, 3] % 12 == chorale[-1, 3] % 12 == tonic
  assert {int(p) % 12 for p in chorale[-1]} == {5, 9, 0}  # F A C
  # 912 voice-steps, all sounding; 8 of them are B natural, outside F major.
  assert music_stats.in_key_share(chorale) == pytest.approx(904 / 912)


def test_in_key_share():
  assert music_stats.in_key_share(C_MAJOR_CADENCE) == 1.0
  chromatic = C_MAJOR_CADENCE.copy()
  chromatic[0, 0] = 73  # one C#5 among 64 voice-steps
  assert music_stats.in_key_share(chromatic) == pytest.approx(63 / 64)
  # In minor, the raised 6th and 7th are in the scale.
  a_minor = _chords((76, 72, 69, 45), (78, 71, 68, 52), (76, 72, 69, 45))
  assert music_stats.in_key_share(a_minor) == 1.0


def test_parallel_fifths_in_similar_motion_only():
  parallel = np.array([[67, 60, R, R], [69, 62, R, R]])  # C-G to D-A, both up
  assert music_stats.parallel_fifths_octaves(parallel) == (1.0, 0.0)
  contrary = np.array([[67, 60, R, R], [69, 50, R, R]])  # C-G to D-A, soprano up, alto down
  assert music_stats.parallel_fifths_octaves(contrary) == (0.0, 0.0)
  # Held steps are not moves; an oblique move is a move but not parallel.
  held = np.array([[67, 60, R, R], [67, 60, R, R], [69, 62, R, R], [69, 64, R, R]])
  assert music_stats.parallel_fifths_octaves(held) == (0.5, 0.0)


def test_parallel_octaves_and_rests():
  octaves = np.array([[72, R, R, 48], [74, R, R, 50], [R, R, R, 52], [77, R, R, 53]])
  # One parallel octave (C-C to D-D); the rest breaks the next pair of steps.
  assert music_stats.parallel_fifths_octaves(octaves) == (0.0, 1.0)
  assert music_stats.parallel_fifths_octaves(C_MAJOR_CADENCE) == (0.0, 0.0)


def test_voice_crossings():
  voices = np.array(
    [
      [72, 67, 60, 48],  # in order
      [67, 72, 60, 48],  # alto above soprano
      [72, 64, 67, 48],  # tenor above alto
      [72, 72, 60, R],  # a unison is not a crossing; the resting bass is not compared
    ]
  )
  assert music_stats.voice_crossings(voices) == pytest.approx(2 / 11)
  assert music_stats.voice_crossings(C_MAJOR_CADENCE) == 0.0


def test_voice_ranges_and_statistics_are_json():
  silent_bass = _chords((72, 67, 64, R), (74, 65, 62, R))
  ranges = music_stats.voice_ranges(silent_bass)
  assert ranges == {'soprano': [72, 74], 'alto': [65, 67], 'tenor': [62, 64], 'bass': None}
  stats = music_stats.statistics([C_MAJOR_CADENCE, silent_bass])
  assert json.loads(json.dumps(stats)) == stats
  assert stats['num_pieces'] == 2
  assert stats['range_soprano'] == [71, 74] and stats['range_bass'] == [43, 53]
  assert stats['voice_crossing_rate'] == 0.0
  assert 0.9 < stats['in_key_share'] <= 1.0
  with pytest.raises(ValueError, match=r'int \[T, 4\]'):
    music_stats.statistics([np.zeros((4, 88), bool)])


def test_statistics_of_the_test_split():
  stats = music_stats.statistics(jsb_files.read_voices(None)['test'])
  # Bach: nearly always in key, rare crossings, almost no parallel fifths or octaves.
  assert stats['in_key_share'] > 0.95
  assert stats['voice_crossing_rate'] < 0.01
  assert stats['parallel_fifth_rate'] < 0.001 and stats['parallel_octave_rate'] < 0.001
  assert stats['range_bass'] == [36, 64] and stats['range_soprano'] == [60, 81]
