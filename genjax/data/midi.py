"""Conversions between piano rolls, four-voice arrays and MIDI, and reading a user's melody.

Two forms of a piece on a grid of equal time steps:

  roll     bool [T, 88]: key k (MIDI pitch LOWEST + k, piano keys A0..C8) sounds at step t
  voices   int [T, V] (V = 4: soprano, alto, tenor, bass): each voice's MIDI pitch per
           step, -1 where it rests

MIDI holds notes with start and end times in seconds. A step is taken as sounding a note
when the note covers the step's midpoint, which makes roll -> MIDI -> roll (and voices ->
MIDI -> voices) exact, also after the times were rounded to a MIDI file's ticks.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pretty_midi

from genjax.config import ConfigError

NUM_KEYS = 88
LOWEST = 21  # A0, the piano's lowest key
HIGHEST = LOWEST + NUM_KEYS - 1  # C8
VOICE_NAMES = ('Soprano', 'Alto', 'Tenor', 'Bass')
CHOIR = 52  # General MIDI 'Choir Aahs': chorales are sung
VELOCITY = 80
# How far (as a share of a step) a melody note's start or end may be from the grid.
GRID_TOLERANCE = 0.1
_PITCH_CLASSES = ('C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B')
_END_MARK = 'end'  # text event marking a piece's end when it ends in silence


def note_name(pitch: int) -> str:
  """Scientific pitch notation with sharps: 60 -> 'C4', 85 -> 'C#6'."""
  return f'{_PITCH_CLASSES[pitch % 12]}{pitch // 12 - 1}'


# ------------------------------------------------------------------ rolls and voices


def _check_key(pitch: int, where: str) -> None:
  if not LOWEST <= pitch <= HIGHEST:
    raise ValueError(
      f'pitch {pitch} at {where} is off the piano (MIDI {LOWEST}..{HIGHEST}, A0..C8).'
    )


def roll_from_steps(steps: list[tuple[int, ...]]) -> np.ndarray:
  """bool [T, 88] from one tuple of MIDI pitches per step (a chorale of `jsb_files`)."""
  roll = np.zeros((len(steps), NUM_KEYS), dtype=bool)
  for t, pitches in enumerate(steps):
    for pitch in pitches:
      _check_key(int(pitch), f'step {t}')
      roll[t, int(pitch) - LOWEST] = True
  return roll


def as_roll(roll: np.ndarray) -> np.ndarray:
  """`roll` as a bool [T, 88] array; ValueError for another shape."""
  roll = np.asarray(roll)
  if roll.ndim != 2 or roll.shape[1] != NUM_KEYS:
    raise ValueError(f'a piano roll is [T, {NUM_KEYS}], got shape {roll.shape}.')
  return roll.astype(bool)


def steps_from_roll(roll: np.ndarray) -> list[tuple[int, ...]]:
  """The inverse of `roll_from_steps`: sorted MIDI pitches per step."""
  roll = as_roll(roll)
  return [tuple(int(k) + LOWEST for k in np.flatnonzero(row)) for row in roll]


def as_voices(voices: np.ndarray) -> np.ndarray:
  """`voices` as an int64 [T, V] array; ValueError for another shape or a bad pitch."""
  voices = np.asarray(voices)
  if voices.ndim != 2 or not np.issubdtype(voices.dtype, np.integer):
    raise ValueError(f'voices are int [T, V], got {voices.dtype} shape {voices.shape}.')
  bad = voices[(voices < -1) | (voices > 127)]
  if bad.size:
    raise ValueError(f'voice pitch {int(bad[0])} is neither a MIDI pitch (0..127) nor -1 (rest).')
  return voices.astype(np.int64)


def voices_to_roll(voices: np.ndarray) -> np.ndarray:
  """bool [T, 88]: the keys any voice sounds at each step."""
  voices = as_voices(voices)
  roll = np.zeros((voices.shape[0], NUM_KEYS), dtype=bool)
  off = (voices >= 0) & ((voices < LOWEST) | (voices > HIGHEST))
  if off.any():
    t, v = np.argwhere(off)[0]
    _check_key(int(voices[t, v]), f'step {t}, voice {v}')
  t, v = np.nonzero(voices >= 0)
  roll[t, voices[t, v] - LOWEST] = True
  return roll


# ------------------------------------------------------------------ to MIDI


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
  """(value, first step, end step) of each run of equal values >= 0 in a 1-D int array."""
  change = np.flatnonzero(np.diff(values)) + 1
  starts = np.concatenate([[0], change])
  ends = np.concatenate([change, [len(values)]])
  return [(int(values[s]), int(s), int(e)) for s, e in zip(starts, ends) if values[s] >= 0]


def _new_midi(seconds_per_step: float, steps_per_quarter: int | None) -> pretty_midi.PrettyMIDI:
  if seconds_per_step <= 0:
    raise ValueError(f'seconds_per_step must be > 0, got {seconds_per_step}.')
  if steps_per_quarter:
    # The tempo makes the file's quarter notes the piece's (for notation software and
    # `read_melody`); without it pretty_midi's 120 bpm is as good as any.
    pm = pretty_midi.PrettyMIDI(initial_tempo=60.0 / (seconds_per_step * steps_per_quarter))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
  else:
    pm = pretty_midi.PrettyMIDI()
  return pm


def _mark_end(pm: pretty_midi.PrettyMIDI, num_steps: int, seconds_per_step: float) -> None:
  # A piece ending in rests would come back shorter; a text event at its end keeps the length.
  end = num_steps * seconds_per_step
  if pm.get_end_time() < end - 0.5 * seconds_per_step:
    pm.text_events.append(pretty_midi.Text(_END_MARK, end))


def roll_to_midi(
  roll: np.ndarray, seconds_per_step: float, program: int = 0, steps_per_quarter: int | None = None
) -> pretty_midi.PrettyMIDI:
  """One instrument playing the roll; a key on in consecutive steps is one held note.

  The JSB data does not tell a held note from a note repeated on the next step, so both
  come out held (and a MIDI repeated note still comes back as the same roll).
  `steps_per_quarter`, when given, sets the file's tempo so that its quarter notes last
  `steps_per_quarter` steps.
  """
  roll = as_roll(roll)
  pm = _new_midi(seconds_per_step, steps_per_quarter)
  instrument = pretty_midi.Instrument(program=program)
  for key in range(NUM_KEYS):
    column = np.where(roll[:, key], LOWEST + key, -1)
    for pitch, start, end in _runs(column):
      instrument.notes.append(
        pretty_midi.Note(VELOCITY, pitch, start * seconds_per_step, end * seconds_per_step)
      )
  instrument.notes.sort(key=lambda n: (n.start, n.pitch))
  pm.instruments.append(instrument)
  _mark_end(pm, len(roll), seconds_per_step)
  return pm


def voices_to_midi(
  voices: np.ndarray,
  seconds_per_step: float,
  programs: tuple[int, ...] = (CHOIR,) * 4,
  steps_per_quarter: int | None = None,
) -> pretty_midi.PrettyMIDI:
  """One instrument per voice (at most four), named Soprano, Alto, Tenor, Bass.

  The same pitch in consecutive steps is one held note (the data does not tell held from
  repeated notes).
  """
  voices = as_voices(voices)
  if voices.shape[1] > len(VOICE_NAMES):
    raise ValueError(f'at most {len(VOICE_NAMES)} voices, got {voices.shape[1]}.')
  if len(programs) < voices.shape[1]:
    raise ValueError(f'{voices.shape[1]} voices need as many programs, got {programs}.')
  pm = _new_midi(seconds_per_step, steps_per_quarter)
  for v in range(voices.shape[1]):
    instrument = pretty_midi.Instrument(program=programs[v], name=VOICE_NAMES[v])
    for pitch, start, end in _runs(voices[:, v]):
      instrument.notes.append(
        pretty_midi.Note(VELOCITY, pitch, start * seconds_per_step, end * seconds_per_step)
      )
    pm.instruments.append(instrument)
  _mark_end(pm, len(voices), seconds_per_step)
  return pm


# ------------------------------------------------------------------ from MIDI


def _num_steps(pm: pretty_midi.PrettyMIDI, seconds_per_step: float) -> int:
  # Steps whose midpoint falls before the end.
  return max(0, math.ceil(pm.get_end_time() / seconds_per_step - 0.5))


def _covered_steps(note: pretty_midi.Note, seconds_per_step: float) -> range:
  """The steps t whose midpoint (t + 1/2) * seconds_per_step lies in [start, end)."""
  first = math.ceil(note.start / seconds_per_step - 0.5)
  end = math.ceil(note.end / seconds_per_step - 0.5)
  return range(max(first, 0), end)


def midi_to_roll(
  pm: pretty_midi.PrettyMIDI, seconds_per_step: float, num_steps: int | None = None
) -> np.ndarray:
  """bool [T, 88]: key on at step t when a note (any instrument but drums) covers the
  step's midpoint. T: `num_steps`, else the steps up to the MIDI's end."""
  num_steps = _num_steps(pm, seconds_per_step) if num_steps is None else num_steps
  roll = np.zeros((num_steps, NUM_KEYS), dtype=bool)
  for instrument in pm.instruments:
    if instrument.is_drum:
      continue
    for note in instrument.notes:
      _check_key(note.pitch, f'{note.start:.3f} s')
      steps = _covered_steps(note, seconds_per_step)
      roll[steps.start : steps.stop, note.pitch - LOWEST] = True
  return roll


def _voice_order(pm: pretty_midi.PrettyMIDI) -> list[pretty_midi.Instrument]:
  """The instruments as voices: by name when all are named Soprano..Bass, else in order."""
  instruments = [i for i in pm.instruments if not i.is_drum]
  names = [i.name.strip().lower() for i in instruments]
  known = [n.lower() for n in VOICE_NAMES]
  if names and all(n in known for n in names) and len(set(names)) == len(names):
    return sorted(instruments, key=lambda i: known.index(i.name.strip().lower()))
  return instruments


def midi_to_voices(
  pm: pretty_midi.PrettyMIDI, seconds_per_step: float, num_steps: int | None = None
) -> np.ndarray:
  """int [T, 4] (-1 rest), the inverse of `voices_to_midi`: one voice per instrument.

  Raises ValueError when there are more than four instruments or an instrument sounds two
  notes at one step (a voice sings one note at a time).
  """
  instruments = _voice_order(pm)
  if len(instruments) > len(VOICE_NAMES):
    raise ValueError(f'{len(instruments)} instruments: at most {len(VOICE_NAMES)} voices.')
  num_steps = _num_steps(pm, seconds_per_step) if num_steps is None else num_steps
  voices = np.full((num_steps, len(VOICE_NAMES)), -1, dtype=np.int16)
  for v, instrument in enumerate(instruments):
    for note in instrument.notes:
      steps = _covered_steps(note, seconds_per_step)
      clash = voices[steps.start : steps.stop, v]
      if np.any(clash >= 0):
        t = steps.start + int(np.argmax(clash >= 0))
        raise ValueError(f'instrument {v} ({instrument.name!r}) sounds two notes at step {t}.')
      voices[steps.start : steps.stop, v] = note.pitch
  return voices


# ------------------------------------------------------------------ a user's melody


def _bar(step: float, steps_per_quarter: int) -> int:
  # Bars of 4/4 (the chorales' metre): a MIDI file's time signature is not consulted.
  return 1 + int(step) // (4 * steps_per_quarter)


def _load(path: str | os.PathLike) -> pretty_midi.PrettyMIDI:
  if not os.path.isfile(path):
    raise ConfigError(f'melody file {path} does not exist: give the path of a MIDI file (.mid).')
  try:
    return pretty_midi.PrettyMIDI(str(path))
  except Exception as e:  # mido and pretty_midi raise many kinds on a file that is not MIDI
    raise ConfigError(
      f'melody file {path} cannot be read as MIDI ({type(e).__name__}: {e}): give a standard '
      'MIDI file (.mid) with one monophonic melody.'
    ) from e


def _melody_notes(pm: pretty_midi.PrettyMIDI, path) -> list[pretty_midi.Note]:
  with_notes = [i for i in pm.instruments if i.notes]
  if not with_notes:
    raise ConfigError(f'melody file {path} has no notes: give a MIDI file with one melody.')
  if len(with_notes) > 1:
    names = ', '.join(repr(i.name or f'program {i.program}') for i in with_notes)
    raise ConfigError(
      f'melody file {path} has notes in {len(with_notes)} instruments ({names}): give one '
      'melody, one instrument (track) playing one note at a time.'
    )
  return sorted(with_notes[0].notes, key=lambda n: (n.start, n.end))


def _check_one_voice(notes, step_s: float, steps_per_quarter: int, path) -> None:
  for before, after in zip(notes, notes[1:]):
    if after.start < before.end - GRID_TOLERANCE * step_s:
      bar = _bar(after.start / step_s, steps_per_quarter)
      raise ConfigError(
        f'melody file {path}: notes {note_name(before.pitch)} and {note_name(after.pitch)} '
        f'sound together in bar {bar} (counting 4/4 bars): the melody must be one voice, '
        'one note at a time. Remove the chord or the second voice.'
      )


def _grid_step(time_s: float, step_s: float, what: str, context: dict) -> int:
  """The grid step at `time_s`, or a ConfigError when it is off the grid."""
  exact = time_s / step_s
  step = round(exact)
  if abs(exact - step) > GRID_TOLERANCE:
    spq = context['steps_per_quarter']
    raise ConfigError(
      f'melody file {context["path"]}: a note {what} in bar {_bar(exact, spq)} (counting 4/4 '
      f'bars) is {abs(exact - step):.2f} steps off the grid of 1/{4 * spq} notes at the file\'s '
      f'tempo of {context["bpm"]:.4g} bpm{context["tempo_note"]}: export the melody quantized '
      f'to 1/{4 * spq} notes at its tempo.'
    )
  return step


def _check_range(note, low: int, high: int, step: int, context: dict) -> None:
  if not low <= note.pitch <= high:
    raise ConfigError(
      f'melody file {context["path"]}: note {note_name(note.pitch)} ({note.pitch}) in bar '
      f'{_bar(step, context["steps_per_quarter"])} (counting 4/4 bars) is outside the range '
      f'{note_name(low)} ({low}) .. {note_name(high)} ({high}): transpose the melody into it.'
    )


def read_melody(path: str | os.PathLike, steps_per_quarter: int, low: int, high: int) -> np.ndarray:
  """One monophonic melody from a MIDI file, on a grid of `steps_per_quarter` steps a quarter.

  The file's first tempo gives the quarter note's length (a later tempo change moves the
  notes off the grid and is reported as such). Note starts and ends must lie within 10% of a
  step of the grid. Bars in messages count 4/4 bars from the start of the file.

  Returns:
    int [T] of MIDI pitches per step, -1 where the melody rests (leading rests kept), T the
    step where the last note ends.

  Raises:
    ConfigError naming the problem and its bar: no file or not MIDI, no notes, notes in
    more than one instrument, two notes sounding together, a note off the grid, or a pitch
    outside [low, high].
  """
  if steps_per_quarter < 1:
    raise ConfigError(f'steps_per_quarter must be >= 1, got {steps_per_quarter}.')
  pm = _load(path)
  notes = _melody_notes(pm, path)
  times, tempi = pm.get_tempo_changes()
  bpm = float(tempi[0])
  step_s = 60.0 / bpm / steps_per_quarter
  other = np.flatnonzero(np.abs(tempi - bpm) > 1e-6)
  context = {
    'path': path,
    'steps_per_quarter': steps_per_quarter,
    'bpm': bpm,
    'tempo_note': f' (it changes tempo at {times[other[0]]:.2f} s)' if other.size else '',
  }
  _check_one_voice(notes, step_s, steps_per_quarter, path)
  spans = []
  for note in notes:
    start = _grid_step(note.start, step_s, 'start', context)
    end = _grid_step(note.end, step_s, 'end', context)
    _check_range(note, low, high, start, context)
    if end <= start:
      raise ConfigError(
        f'melody file {path}: note {note_name(note.pitch)} in bar '
        f'{_bar(start, steps_per_quarter)} is shorter than a 1/{4 * steps_per_quarter} note: '
        f'export the melody quantized to 1/{4 * steps_per_quarter} notes at its tempo.'
      )
    spans.append((note.pitch, start, end))
  melody = np.full(max(end for _, _, end in spans), -1, dtype=np.int64)
  for pitch, start, end in spans:
    melody[start:end] = pitch
  return melody
