"""Tests for genjax.data.midi: exact MIDI round trips of real chorales, and reading a
user's melody with a clear error for each kind of bad file."""

import numpy as np
import pretty_midi
import pytest

from genjax.config import ConfigError
from genjax.data import jsb_files, midi

SECONDS_PER_QUARTER = 0.6  # 100 bpm


@pytest.fixture(scope='module')
def voices():
  return jsb_files.read_voices(None)['test'][0]


def _through_file(pm: pretty_midi.PrettyMIDI, tmp_path) -> pretty_midi.PrettyMIDI:
  """The MIDI as written to and read back from a file (times rounded to ticks)."""
  path = tmp_path / 'piece.mid'
  pm.write(str(path))
  return pretty_midi.PrettyMIDI(str(path))


def test_note_names():
  assert [midi.note_name(p) for p in (21, 60, 61, 85, 108)] == ['A0', 'C4', 'C#4', 'C#6', 'C8']


def test_steps_and_rolls_are_inverses():
  steps = [(60, 64, 67), (), (21, 108)]
  roll = midi.roll_from_steps(steps)
  assert roll.shape == (3, 88) and roll.dtype == bool and roll.sum() == 5
  assert midi.steps_from_roll(roll) == steps
  with pytest.raises(ValueError, match='pitch 20 at step 1'):
    midi.roll_from_steps([(60,), (20, 60)])


@pytest.mark.parametrize('resolution', ['quarter', '16th'])
def test_roll_round_trip_is_exact(resolution, tmp_path):
  chorale = jsb_files.read_piano_rolls(None, resolution)['test'][0]
  roll = midi.roll_from_steps(chorale)
  spq = jsb_files.STEPS_PER_QUARTER[resolution]
  seconds_per_step = SECONDS_PER_QUARTER / spq
  pm = midi.roll_to_midi(roll, seconds_per_step, steps_per_quarter=spq)
  np.testing.assert_array_equal(midi.midi_to_roll(pm, seconds_per_step), roll)
  back = midi.midi_to_roll(_through_file(pm, tmp_path), seconds_per_step)
  np.testing.assert_array_equal(back, roll)
  assert midi.steps_from_roll(back) == chorale


def test_held_keys_are_one_note():
  roll = midi.roll_from_steps([(60,), (60,), (60, 64), ()])
  notes = midi.roll_to_midi(roll, 0.5).instruments[0].notes
  assert [(n.pitch, n.start, n.end) for n in notes] == [(60, 0.0, 1.5), (64, 1.0, 1.5)]
  # The trailing silent step survives (a text event marks the end).
  assert midi.midi_to_roll(midi.roll_to_midi(roll, 0.5), 0.5).shape == (4, 88)


def test_voices_round_trip_is_exact(voices, tmp_path):
  pm = midi.voices_to_midi(voices, 0.15, steps_per_quarter=4)
  assert [i.name for i in pm.instruments] == ['Soprano', 'Alto', 'Tenor', 'Bass']
  # The soprano's first note is held over the steps it repeats in.
  soprano = voices[:, 0]
  held = int(np.argmax(soprano != soprano[0]))
  assert pm.instruments[0].notes[0].end == pytest.approx(held * 0.15)
  back = midi.midi_to_voices(_through_file(pm, tmp_path), 0.15)
  assert back.dtype == np.int16
  np.testing.assert_array_equal(back, voices)
  np.testing.assert_array_equal(midi.midi_to_voices(pm, 0.15, num_steps=10), voices[:10])


def test_midi_to_voices_orders_instruments_by_name(voices):
  pm = midi.voices_to_midi(voices[:32], 0.15)
  pm.instruments.reverse()
  np.testing.assert_array_equal(midi.midi_to_voices(pm, 0.15), voices[:32])


def test_voices_to_roll(voices):
  roll = midi.voices_to_roll(voices)
  assert roll.shape == (len(voices), 88)
  t, v = np.nonzero(voices >= 0)
  assert roll[t, voices[t, v] - midi.LOWEST].all()
  assert roll.sum() == sum(len(set(row[row >= 0])) for row in voices)  # unisons: one key


# ------------------------------------------------------------------ read_melody


def _melody_file(tmp_path, spans, name='melody.mid', bpm=100.0, extra_instrument=False):
  """A MIDI file of (pitch, start step, end step) notes on a 16th-note grid at `bpm`."""
  pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
  step_s = 60.0 / bpm / 4
  instrument = pretty_midi.Instrument(program=0, name='Melody')
  for pitch, start, end in spans:
    instrument.notes.append(pretty_midi.Note(90, pitch, start * step_s, end * step_s))
  pm.instruments.append(instrument)
  if extra_instrument:
    second = pretty_midi.Instrument(program=32, name='Bass')
    second.notes.append(pretty_midi.Note(90, 40, 0.0, step_s))
    pm.instruments.append(second)
  path = tmp_path / name
  pm.write(str(path))
  return path


def _spans(line: np.ndarray) -> list[tuple[int, int, int]]:
  change = np.flatnonzero(np.diff(line)) + 1
  starts, ends = np.r_[0, change], np.r_[change, len(line)]
  return [(int(line[s]), int(s), int(e)) for s, e in zip(starts, ends) if line[s] >= 0]


def test_read_melody_returns_the_soprano_line(voices, tmp_path):
  soprano = voices[:, 0].astype(np.int64)
  path = _melody_file(tmp_path, _spans(soprano))
  melody = midi.read_melody(path, steps_per_quarter=4, low=60, high=81)
  np.testing.assert_array_equal(melody, soprano)
  # At 8th-note resolution the same file is off the grid only where 16ths are.
  assert len(midi.read_melody(_melody_file(tmp_path, [(60, 4, 8)]), 2, 60, 81)) == 4


def test_leading_rest_is_kept(tmp_path):
  melody = midi.read_melody(_melody_file(tmp_path, [(67, 4, 6), (69, 6, 8)]), 4, 60, 81)
  np.testing.assert_array_equal(melody, [-1] * 4 + [67, 67, 69, 69])


def test_overlapping_notes_name_the_bar(tmp_path):
  path = _melody_file(tmp_path, [(67, 30, 36), (64, 34, 38)])  # second note in bar 3
  with pytest.raises(ConfigError, match=r'G4 and E4 sound together in bar 3.*one voice'):
    midi.read_melody(path, 4, 60, 81)


def test_note_out_of_range_names_pitch_bar_and_range(tmp_path):
  path = _melody_file(tmp_path, [(72, 0, 16), (85, 20, 24)])
  with pytest.raises(ConfigError, match=r'C#6 \(85\) in bar 2.*C4 \(60\) \.\. A5 \(81\)'):
    midi.read_melody(path, 4, 60, 81)


def test_off_grid_note_names_the_bar_and_the_fix(tmp_path):
  path = _melody_file(tmp_path, [(72, 0, 16), (74, 36.4, 40)])  # 0.4 of a step late
  with pytest.raises(ConfigError, match=r'start in bar 3.*0\.40 steps.*quantized to 1/16 notes'):
    midi.read_melody(path, 4, 60, 81)


def test_two_instruments_are_refused(tmp_path):
  path = _melody_file(tmp_path, [(72, 0, 4)], extra_instrument=True)
  with pytest.raises(ConfigError, match=r"2 instruments \('Melody', 'Bass'\)"):
    midi.read_melody(path, 4, 60, 81)


def test_not_a_midi_file(tmp_path):
  path = tmp_path / 'melody.mid'
  path.write_text('not MIDI')
  with pytest.raises(ConfigError, match='cannot be read as MIDI'):
    midi.read_melody(path, 4, 60, 81)
  with pytest.raises(ConfigError, match='does not exist'):
    midi.read_melody(tmp_path / 'absent.mid', 4, 60, 81)
