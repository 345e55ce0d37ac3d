"""Musical statistics of four-voice pieces: key, in-key share, voice crossings, parallel
fifths and octaves, voice ranges.

A piece is int [T, 4] (soprano, alto, tenor, bass; MIDI pitch per step, -1 where the voice
rests), at 16th-note resolution unless said. The statistics compare generated chorales
with Bach's: Bach's are almost all in key, rarely cross voices, and avoid parallel fifths
and octaves, so a model that has learned the style scores like the data.
"""

from __future__ import annotations

import itertools
from typing import Iterable

import numpy as np

VOICE_NAMES = ('soprano', 'alto', 'tenor', 'bass')
# Krumhansl & Kessler (1982) probe-tone profiles, from the tonic upwards by semitone.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = frozenset({0, 2, 4, 5, 7, 9, 11})
# Natural minor with the raised 6th and 7th: the union of natural, harmonic and melodic minor.
MINOR_SCALE = frozenset({0, 2, 3, 5, 7, 8, 9, 10, 11})
# Key names as a musician spells them (Bb major, not A# major).
_MAJOR_TONICS = ('C', 'Db', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B')
_MINOR_TONICS = ('C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'G#', 'A', 'Bb', 'B')
FIFTH, OCTAVE = 7, 0  # intervals mod 12


def _as_voices(voices: np.ndarray) -> np.ndarray:
  voices = np.asarray(voices)
  if voices.ndim != 2 or voices.shape[1] != 4 or not np.issubdtype(voices.dtype, np.integer):
    raise ValueError(
      f'music statistics need four-voice pieces, int [T, 4] with -1 for a rest; got '
      f'{voices.dtype} of shape {voices.shape}.'
    )
  return voices.astype(np.int64)


# ------------------------------------------------------------------ key


def key_name(tonic: int, mode: str) -> str:
  """'G major', 'F# minor', 'Bb major'."""
  tonics = _MAJOR_TONICS if mode == 'major' else _MINOR_TONICS
  return f'{tonics[tonic % 12]} {mode}'


def find_key(pitches_with_durations: Iterable[tuple[int, float]]) -> tuple[int, str, float]:
  """The Krumhansl-Schmuckler key of (MIDI pitch, duration) pairs.

  Correlates the duration-weighted pitch-class histogram with the 24 rotations of the
  Krumhansl-Kessler major and minor profiles.

  Returns:
    (tonic pitch class 0..11 with 0 = C, 'major' or 'minor', the correlation); ties go to
    the first of C major .. B major, C minor .. B minor.
  """
  histogram = np.zeros(12)
  for pitch, duration in pitches_with_durations:
    histogram[int(pitch) % 12] += float(duration)
  if np.ptp(histogram) == 0:
    raise ValueError('find_key needs notes of more than one pitch class (none or all equal).')
  best = (0, 'major', -np.inf)
  for mode, profile in (('major', MAJOR_PROFILE), ('minor', MINOR_PROFILE)):
    for tonic in range(12):
      # np.roll puts the profile's tonic weight at pitch class `tonic`.
      r = float(np.corrcoef(histogram, np.roll(profile, tonic))[0, 1])
      if r > best[2]:
        best = (tonic, mode, r)
  return best


def sounding_notes(voices: np.ndarray) -> list[tuple[int, int]]:
  """(pitch, 1) per sounding voice-step: a note held n steps weighs n."""
  voices = _as_voices(voices)
  return [(int(p), 1) for p in voices[voices >= 0]]


def key_of(voices: np.ndarray) -> tuple[int, str, float]:
  """`find_key` of a four-voice piece."""
  return find_key(sounding_notes(voices))


def in_key_share(voices: np.ndarray) -> float:
  """Share of sounding voice-steps whose pitch class is in the piece's found key's scale
  (major scale; in minor, natural minor with the raised 6th and 7th)."""
  voices = _as_voices(voices)
  tonic, mode, _ = key_of(voices)
  scale = np.array(sorted(MAJOR_SCALE if mode == 'major' else MINOR_SCALE))
  degrees = (voices[voices >= 0] - tonic) % 12
  return float(np.isin(degrees, scale).mean())


# ------------------------------------------------------------------ voice leading


def _crossing_counts(voices: np.ndarray) -> tuple[int, int]:
  """(crossed, compared) over adjacent voice pairs and steps where both voices sound."""
  voices = _as_voices(voices)
  crossed = compared = 0
  for upper in range(3):
    a, b = voices[:, upper], voices[:, upper + 1]
    both = (a >= 0) & (b >= 0)
    compared += int(both.sum())
    crossed += int((both & (b > a)).sum())
  return crossed, compared


def voice_crossings(voices: np.ndarray) -> float:
  """Share of (adjacent voice pair, step) with both sounding where the lower voice is above
  the upper one (soprano below alto, alto below tenor or tenor below bass); a unison is not
  a crossing. 0 when no pair ever sounds together."""
  crossed, compared = _crossing_counts(voices)
  return crossed / compared if compared else 0.0


def _parallel_counts(voices: np.ndarray) -> tuple[int, int, int]:
  """(parallel fifths, parallel octaves, two-voice moves); see `parallel_fifths_octaves`."""
  voices = _as_voices(voices)
  fifths = octaves = moves = 0
  for i, j in itertools.combinations(range(4), 2):
    a0, a1 = voices[:-1, i], voices[1:, i]
    b0, b1 = voices[:-1, j], voices[1:, j]
    sound = (a0 >= 0) & (a1 >= 0) & (b0 >= 0) & (b1 >= 0)
    move = sound & ((a0 != a1) | (b0 != b1))
    moves += int(move.sum())
    # Both voices move the same way (so neither holds: that is oblique motion).
    similar = move & (np.sign(a1 - a0) == np.sign(b1 - b0)) & (a1 != a0)
    before, after = np.abs(a0 - b0) % 12, np.abs(a1 - b1) % 12
    fifths += int((similar & (before == FIFTH) & (after == FIFTH)).sum())
    octaves += int((similar & (before == OCTAVE) & (after == OCTAVE)).sum())
  return fifths, octaves, moves


def parallel_fifths_octaves(voices: np.ndarray) -> tuple[float, float]:
  """(parallel fifth rate, parallel octave rate) of a piece.

  What is counted: for each of the 6 pairs of voices and each pair of consecutive steps
  where both voices sound at both steps and at least one of them changes pitch (a
  "two-voice move"; held notes repeat across steps, so consecutive steps that differ are
  consecutive distinct sonorities), a parallel fifth is a move where the interval between
  the two voices, |upper - lower| mod 12, is 7 (a fifth or compound fifth) before and
  after and both voices move in the same direction; a parallel octave the same with
  interval 0 (unisons and octaves). Contrary and oblique motion are never parallel. Each
  rate is its count over the number of two-voice moves (0 when there are none).
  """
  fifths, octaves, moves = _parallel_counts(voices)
  return (fifths / moves, octaves / moves) if moves else (0.0, 0.0)


def voice_ranges(voices: np.ndarray) -> dict[str, list[int] | None]:
  """{'soprano': [lowest, highest pitch], ...}; None for a voice that never sounds."""
  voices = _as_voices(voices)
  ranges = {}
  for v, name in enumerate(VOICE_NAMES):
    sung = voices[voices[:, v] >= 0, v]
    ranges[name] = [int(sung.min()), int(sung.max())] if sung.size else None
  return ranges


# ------------------------------------------------------------------ all together


def _merge_range(a: list[int] | None, b: list[int] | None) -> list[int] | None:
  if a is None or b is None:
    return a or b
  return [min(a[0], b[0]), max(a[1], b[1])]


def statistics(pieces: list[np.ndarray]) -> dict:
  """All statistics of a set of four-voice pieces, as JSON-serializable numbers.

  'in_key_share' is the mean over pieces (each piece in its own found key); the crossing
  and parallel rates pool the counts of all pieces (sum of events over sum of
  opportunities), so that long pieces weigh more; 'range_<voice>' is [lowest, highest]
  over all pieces (None if the voice never sounds).
  """
  if not pieces:
    raise ValueError('statistics needs at least one piece.')
  crossed = compared = fifths = octaves = moves = 0
  shares, ranges = [], dict.fromkeys(VOICE_NAMES)
  for piece in pieces:
    piece = _as_voices(piece)
    if (piece >= 0).any():
      shares.append(in_key_share(piece))
    c, n = _crossing_counts(piece)
    f, o, m = _parallel_counts(piece)
    crossed, compared = crossed + c, compared + n
    fifths, octaves, moves = fifths + f, octaves + o, moves + m
    for name, span in voice_ranges(piece).items():
      ranges[name] = _merge_range(ranges[name], span)
  stats = {
    'num_pieces': len(pieces),
    'in_key_share': float(np.mean(shares)) if shares else 0.0,
    'voice_crossing_rate': crossed / compared if compared else 0.0,
    'parallel_fifth_rate': fifths / moves if moves else 0.0,
    'parallel_octave_rate': octaves / moves if moves else 0.0,
  }
  stats.update({f'range_{name}': span for name, span in ranges.items()})
  return stats
