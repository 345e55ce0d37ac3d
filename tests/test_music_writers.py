"""Tests for genjax.writers.music: MIDI, WAV and PNG files and the `Music` output kind."""

import wave

import numpy as np
import pretty_midi
import pytest
from PIL import Image

from genjax.data import jsb_files, midi
from genjax.writers import music


@pytest.fixture(scope='module')
def voices():
  return jsb_files.read_voices(None)['test'][0]


def test_piano_roll_image_is_cropped_with_3px_cells(voices):
  roll = midi.voices_to_roll(voices)
  image = music.piano_roll_image(roll)
  used = np.flatnonzero(roll.any(axis=0))
  keys = used[-1] - used[0] + 1 + 2 * 3  # the used keys and a margin of 3 each side
  assert image.shape == (keys * 3, len(roll) * 3, 3) and image.dtype == np.uint8
  # The highest used key is the top row below the margin, drawn dark where it sounds.
  top = 3 * 3
  t = int(np.argmax(roll[:, used[-1]]))
  assert (image[top : top + 3, 3 * t : 3 * t + 3] == 40).all()
  assert image[0, 0].tolist() == [255, 255, 255]


def test_piano_roll_image_colours_voices(voices):
  image = music.piano_roll_image(midi.voices_to_roll(voices), voices=voices)
  colours = {tuple(c) for c in image.reshape(-1, 3)}
  assert set(music.VOICE_COLOURS) <= colours


def test_silent_roll_shows_an_octave_around_middle_c():
  image = music.piano_roll_image(np.zeros((8, 88), bool))
  assert image.shape == (13 * 3, 24, 3)
  assert (image == 255).sum() < image.size  # the C lines


def test_write_wav_is_readable_16_bit_pcm(tmp_path):
  t = np.arange(2205) / 22050
  path = music.write_wav(0.3 * np.sin(2 * np.pi * 440 * t), 22050, tmp_path / 'a' / 'tone.wav')
  with wave.open(str(path), 'rb') as f:
    assert (f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()) == (
      1,
      2,
      22050,
      2205,
    )
    samples = np.frombuffer(f.readframes(2205), dtype='<i2')
  assert np.abs(samples).max() == round(0.9 * 32767)
  silent = music.write_wav(np.zeros(100), 22050, tmp_path / 'silent.wav')
  with wave.open(str(silent), 'rb') as f:
    assert not np.frombuffer(f.readframes(100), dtype='<i2').any()
  assert sorted(p.name for p in tmp_path.rglob('*')) == ['a', 'silent.wav', 'tone.wav']


def test_synthesize_says_which_synthesizer(voices):
  pm = midi.voices_to_midi(voices[:16], 0.1)
  audio, synthesizer = music.synthesize(pm, sample_rate=8000)
  assert synthesizer in (music.FLUIDSYNTH, music.ADDITIVE)
  assert audio.dtype == np.float32 and audio.ndim == 1
  assert len(audio) >= 1.6 * 8000 and np.abs(audio).max() == pytest.approx(0.9)
  silent, _ = music.synthesize(pretty_midi.PrettyMIDI(), sample_rate=8000)
  assert not silent.any()


class _Writer:
  def __init__(self, audio: bool):
    self.calls = []
    if audio:
      self.write_audio = lambda step, tag, audio, rate: self.calls.append((tag, audio.shape, rate))

  def write_images(self, step, tag, image):
    self.calls.append((tag, image.shape))


def test_music_saves_logs_and_shows(voices, tmp_path):
  piano = midi.voices_to_roll(voices[:24])
  out = music.Music([voices[:32], piano], 0.1, names=['chorale', 'roll'], sample_rate=8000)
  first = out.save(tmp_path / 'sample')
  names = [f'sample_{name}.{ext}' for name in ('chorale', 'roll') for ext in ('mid', 'wav', 'png')]
  assert out.paths == [str(tmp_path / name) for name in names] and first == out.paths[0]
  back = midi.midi_to_voices(pretty_midi.PrettyMIDI(str(tmp_path / 'sample_chorale.mid')), 0.1)
  np.testing.assert_array_equal(back, voices[:32])
  assert Image.open(tmp_path / 'sample_roll.png').size == (24 * 3, out.render()[1].image.shape[0])
  shown = out.show().splitlines()
  assert shown[0] == f'chorale: {tmp_path / "sample_chorale.mid"}'
  assert shown[-1] in (f'audio: {music.FLUIDSYNTH}', f'audio: {music.ADDITIVE}')

  with_audio, without = _Writer(audio=True), _Writer(audio=False)
  out.log(with_audio, 5, 'samples')
  out.log(without, 5, 'samples')
  assert [c[0] for c in with_audio.calls] == [
    'samples/roll_0',
    'samples/audio_0',
    'samples/roll_1',
    'samples/audio_1',
  ]
  assert [c[0] for c in without.calls] == ['samples/roll_0', 'samples/roll_1']


def test_one_piece_is_saved_under_the_stem(voices, tmp_path):
  out = music.Music([voices[:8]], 0.1, sample_rate=8000, steps_per_quarter=4)
  out.save(tmp_path / 'one')
  paths = out.paths
  assert [p.rsplit('/', 1)[1] for p in paths] == ['one.mid', 'one.wav', 'one.png']
  tempo = pretty_midi.PrettyMIDI(paths[0]).get_tempo_changes()[1][0]
  assert tempo == pytest.approx(150.0)  # 4 steps of 0.1 s a quarter
