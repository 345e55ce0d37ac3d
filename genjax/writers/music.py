"""Output writers for music: MIDI files, audio (synthesized, WAV), piano-roll pictures, and
`Music`, the output kind a music family's view returns (see genjax/writers/outputs.py).

Audio comes from FluidSynth with pretty_midi's bundled General MIDI soundfont when the
`fluidsynth` module (pyfluidsynth, which needs the libfluidsynth system library) works,
else from pretty_midi's additive synthesis; every function that makes audio says which.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import tempfile
import wave

import numpy as np
import pretty_midi

from genjax.data import midi
from genjax.writers import images as image_writer

SAMPLE_RATE = 22050
FLUIDSYNTH = 'FluidSynth (General MIDI soundfont TimGM6mb)'
ADDITIVE = 'pretty_midi additive synthesis'
_PEAK = 0.9  # of full scale: headroom against clipping in players that resample
_WHITE, _C_LINE, _NOTE = 255, 225, (40, 40, 40)
# Soprano, alto, tenor, bass: dark enough on white, apart enough to tell voices by eye.
VOICE_COLOURS = ((200, 30, 30), (30, 140, 40), (30, 70, 200), (150, 60, 150))


# ------------------------------------------------------------------ files


def _atomic_write(path: str | os.PathLike, write) -> pathlib.Path:
  """Calls `write(tmp_path)` then renames tmp onto `path`: readers never see half a file."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
  os.close(fd)
  try:
    write(tmp)
    os.replace(tmp, path)
  finally:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp)
  return path


def write_midi(pm: pretty_midi.PrettyMIDI, path: str | os.PathLike) -> pathlib.Path:
  """Writes a standard MIDI file, atomically; returns its path."""
  return _atomic_write(path, pm.write)


def _normalized(audio: np.ndarray) -> np.ndarray:
  """float64 mono audio scaled to a peak of 0.9; silence (or non-finite audio) is zeros."""
  audio = np.asarray(audio, dtype=np.float64).reshape(-1)
  peak = np.max(np.abs(audio)) if audio.size else 0.0
  if peak == 0 or not np.isfinite(peak):
    return np.zeros(audio.shape)
  return audio * (_PEAK / peak)


def write_wav(audio: np.ndarray, sample_rate: int, path: str | os.PathLike) -> pathlib.Path:
  """Mono 16-bit PCM WAV of `audio` scaled to a peak of 0.9, atomically; returns its path."""
  samples = np.round(_normalized(audio) * 32767).astype('<i2')

  def write(tmp: str) -> None:
    with wave.open(tmp, 'wb') as f:
      f.setnchannels(1)
      f.setsampwidth(2)
      f.setframerate(int(sample_rate))
      f.writeframes(samples.tobytes())

  return _atomic_write(path, write)


# ------------------------------------------------------------------ audio


def _soft_wave(phase: np.ndarray) -> np.ndarray:
  # Harmonics falling off by half each: rounder than a bare sine, far from a buzz.
  return (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase)) / 1.75


def _fluidsynth(pm: pretty_midi.PrettyMIDI, sample_rate: int) -> np.ndarray | None:
  """FluidSynth's rendering, or None when pyfluidsynth or its library is unavailable."""
  try:
    import fluidsynth  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import

    return pm.fluidsynth(fs=sample_rate)
  except Exception:  # ImportError, OSError (no libfluidsynth), or a soundfont failure
    return None


def synthesize(
  pm: pretty_midi.PrettyMIDI, sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, str]:
  """(float32 mono waveform with peak 0.9, the synthesizer's name).

  FluidSynth when it works, else pretty_midi's additive synthesis with a few harmonics.
  """
  audio = _fluidsynth(pm, sample_rate)
  if audio is not None:
    return _normalized(audio).astype(np.float32), FLUIDSYNTH
  # normalize=False: pretty_midi's own normalization divides by zero on silence.
  audio = pm.synthesize(fs=sample_rate, wave=_soft_wave, normalize=False)
  return _normalized(audio).astype(np.float32), ADDITIVE


# ------------------------------------------------------------------ pictures


def _key_range(roll: np.ndarray, margin: int) -> tuple[int, int]:
  """First and last key (0..87) shown: the used ones plus `margin`; an octave if silent."""
  used = np.flatnonzero(roll.any(axis=0))
  if not used.size:
    middle_c = 60 - midi.LOWEST
    return middle_c - 6, middle_c + 6
  return max(0, int(used[0]) - margin), min(midi.NUM_KEYS - 1, int(used[-1]) + margin)


def piano_roll_image(
  roll: np.ndarray,
  voices: np.ndarray | None = None,
  step_px: int = 3,
  key_px: int = 3,
  margin: int = 3,
) -> np.ndarray:
  """A uint8 [H, W, 3] picture of a piano roll: time left to right, pitch bottom to top.

  Args:
    roll: bool [T, 88].
    voices: optional int [T, 4] (-1 rest) of the same piece: each voice gets its colour.
    step_px, key_px: pixels per step and per key (3 x 3 keeps a 160-step chorale readable).
    margin: keys shown beyond the lowest and highest used one.

  Dark notes on white, a light line under each C, cropped to the used keys.
  """
  roll = midi.as_roll(roll)
  if step_px < 1 or key_px < 1:
    raise ValueError(f'step_px and key_px must be >= 1, got {step_px} and {key_px}.')
  lo, hi = _key_range(roll, margin)
  keys = hi - lo + 1
  # Rows top to bottom run from the highest key down; one row of cells per key.
  cells = np.full((keys, len(roll), 3), _WHITE, dtype=np.uint8)
  for k in range(lo, hi + 1):
    if (k + midi.LOWEST) % 12 == 0:
      cells[hi - k] = _C_LINE
  if voices is None:
    t, k = np.nonzero(roll[:, lo : hi + 1])
    cells[hi - lo - k, t] = _NOTE
  else:
    _paint_voices(cells, voices, lo, hi, len(roll))
  image = np.repeat(np.repeat(cells, key_px, axis=0), step_px, axis=1)
  return image


def _paint_voices(cells: np.ndarray, voices: np.ndarray, lo: int, hi: int, steps: int) -> None:
  voices = midi.as_voices(voices)
  if voices.shape[0] != steps:
    raise ValueError(f'voices have {voices.shape[0]} steps, the roll {steps}.')
  # Bass first, so that a unison shows the upper voice.
  for v in reversed(range(voices.shape[1])):
    t = np.flatnonzero(voices[:, v] >= 0)
    k = voices[t, v] - midi.LOWEST
    shown = (k >= lo) & (k <= hi)
    cells[hi - k[shown], t[shown]] = VOICE_COLOURS[v % len(VOICE_COLOURS)]


# ------------------------------------------------------------------ the output kind


def _is_voices(piece: np.ndarray) -> bool:
  return piece.ndim == 2 and piece.shape[1] == len(midi.VOICE_NAMES) and piece.dtype != bool


@dataclasses.dataclass
class _Rendered:
  midi: pretty_midi.PrettyMIDI
  image: np.ndarray
  audio: np.ndarray
  synthesizer: str


@dataclasses.dataclass
class Music:
  """Pieces of music, each saved as MIDI, WAV and a piano-roll PNG.

  Each piece is a voices array int [T, 4] (-1 rest; one MIDI instrument per voice) or a
  bool piano roll [T, 88]. `steps_per_quarter`, when known, sets the MIDI files' tempo.
  """

  pieces: list[np.ndarray]
  seconds_per_step: float
  names: list[str] | None = None
  steps_per_quarter: int | None = None
  sample_rate: int = SAMPLE_RATE
  paths: list[str] = dataclasses.field(default_factory=list)  # what `save` last wrote
  saved_by_default = True
  _rendered: list[_Rendered] | None = dataclasses.field(
    default=None, init=False, repr=False, compare=False
  )

  def __post_init__(self):
    if self.names is not None and len(self.names) != len(self.pieces):
      raise ValueError(f'{len(self.names)} names for {len(self.pieces)} pieces.')

  def render(self) -> list[_Rendered]:
    """Each piece's MIDI, picture and audio, made once (audio takes the most time)."""
    if self._rendered is None:
      self._rendered = [self._render(np.asarray(piece)) for piece in self.pieces]
    return self._rendered

  def _render(self, piece: np.ndarray) -> _Rendered:
    sps, spq = self.seconds_per_step, self.steps_per_quarter
    if _is_voices(piece):
      pm = midi.voices_to_midi(piece, sps, steps_per_quarter=spq)
      image = piano_roll_image(midi.voices_to_roll(piece), voices=piece)
    else:
      pm = midi.roll_to_midi(piece, sps, steps_per_quarter=spq)
      image = piano_roll_image(piece)
    audio, synthesizer = synthesize(pm, self.sample_rate)
    return _Rendered(pm, image, audio, synthesizer)

  def _stem(self, stem: str | os.PathLike, i: int) -> str:
    if len(self.pieces) == 1:
      return str(stem)
    return f'{stem}_{i if self.names is None else self.names[i]}'

  def save(self, stem: str | os.PathLike) -> str:
    """Writes `{stem}_{name}.mid/.wav/.png` per piece (name: its index, or its name;
    `{stem}.*` for one piece) and returns the first path; `paths` holds them all."""
    self.paths = []
    for i, rendered in enumerate(self.render()):
      base = self._stem(stem, i)
      self.paths.append(str(write_midi(rendered.midi, f'{base}.mid')))
      self.paths.append(str(write_wav(rendered.audio, self.sample_rate, f'{base}.wav')))
      self.paths.append(str(image_writer.save_png(f'{base}.png', rendered.image, scale=1)))
    return self.paths[0]

  def log(self, writer, step: int, tag: str) -> None:
    write_audio = getattr(writer, 'write_audio', None)
    for i, rendered in enumerate(self.render()):
      writer.write_images(step, f'{tag}/roll_{i}', rendered.image)
      if write_audio is not None:
        write_audio(step, f'{tag}/audio_{i}', rendered.audio, self.sample_rate)

  def show(self) -> str:
    lines = list(self.paths)
    if self.names is not None and self.paths:  # save wrote 3 files per piece, in order
      lines = [f'{self.names[i // 3]}: {path}' for i, path in enumerate(self.paths)]
    if self._rendered:
      lines.append(f'audio: {self._rendered[0].synthesizer}')
    return '\n'.join(lines)
