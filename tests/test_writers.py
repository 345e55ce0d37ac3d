"""Tests for genjax.writers: metrics.jsonl, TensorBoard events, image grids and PNGs."""

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genjax.writers import MetricWriter, make_grid, read_metrics, save_png, upscale


def _read_tensorboard(logdir: Path):
  """(tag, step, value) for every scalar and image summary in the event files.

  TensorBoard itself is not a dependency, so parse the TFRecord framing directly:
  uint64 length, uint32 length-crc, payload, uint32 payload-crc.
  """
  from tensorboardX.proto import event_pb2

  records = []
  for path in sorted(logdir.glob('events.out.tfevents.*')):
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack('<Q', data[offset : offset + 8])
      payload = data[offset + 12 : offset + 12 + length]
      offset += 12 + length + 4
      event = event_pb2.Event.FromString(payload)
      for value in event.summary.value:
        if value.HasField('image'):
          records.append((value.tag, event.step, value.image))
        elif value.HasField('audio'):
          records.append((value.tag, event.step, value.audio))
        else:
          records.append((value.tag, event.step, value.simple_value))
  return records


def test_jsonl_round_trip_with_numpy_and_non_finite(tmp_path):
  with MetricWriter(tmp_path) as writer:
    writer.write(10, 'train', {'loss': np.float32(0.5), 'count': np.int64(3), 'lr': 1e-3})
    writer.write(20, 'eval', {'loss': float('nan'), 'psnr': math.inf, 'low': -math.inf})
  lines = (tmp_path / 'metrics.jsonl').read_text().splitlines()
  assert len(lines) == 2
  strict = json.loads(lines[1], parse_constant=lambda c: pytest.fail(f'non-JSON constant {c}'))
  assert strict['loss'] == 'NaN' and strict['psnr'] == 'Infinity'

  rows = read_metrics(tmp_path)
  assert rows[0]['step'] == 10 and rows[0]['split'] == 'train'
  assert rows[0]['loss'] == 0.5 and rows[0]['count'] == 3 and type(rows[0]['count']) is int
  assert rows[0]['lr'] == 1e-3 and rows[0]['time'] > 1.6e9
  assert math.isnan(rows[1]['loss']) and rows[1]['psnr'] == math.inf and rows[1]['low'] == -math.inf


def test_write_rejects_bad_values(tmp_path):
  with MetricWriter(tmp_path) as writer:
    with pytest.raises(ValueError, match='reserved'):
      writer.write(0, 'train', {'step': 1.0})
    with pytest.raises(ValueError, match='scalar'):
      writer.write(0, 'train', {'loss': np.zeros(3)})
    with pytest.raises(TypeError, match='real number'):
      writer.write(0, 'train', {'loss': 'low'})


def test_resume_appends_and_survives_a_partial_line(tmp_path):
  with MetricWriter(tmp_path) as writer:
    writer.write(1, 'train', {'loss': 1.0})
  with open(tmp_path / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 2, "spl')  # a write cut short by preemption
  with MetricWriter(tmp_path) as writer:
    writer.write(2, 'train', {'loss': 0.5})
  with pytest.warns(UserWarning, match='unparsable'):
    rows = read_metrics(tmp_path)
  assert [(r['step'], r['loss']) for r in rows] == [(1, 1.0), (2, 0.5)]


def test_tensorboard_scalars_and_images(tmp_path):
  grid = make_grid(np.random.default_rng(0).random((4, 5, 5, 1)))
  with MetricWriter(tmp_path) as writer:
    writer.write(3, 'train', {'loss': 0.25})
    writer.write(4, 'eval', {'loss': 0.125, 'nll': np.float64(80.5)})
    writer.write_images(4, 'samples', grid)
  logdir = tmp_path / 'tensorboard'
  assert list(logdir.glob('events.out.tfevents.*'))
  records = _read_tensorboard(logdir)
  scalars = {(tag, step): value for tag, step, value in records if tag != 'samples'}
  assert scalars == {('train/loss', 3): 0.25, ('eval/loss', 4): 0.125, ('eval/nll', 4): 80.5}
  (image,) = [value for tag, _, value in records if tag == 'samples']
  assert (image.height, image.width) == grid.shape[:2]
  import io

  decoded = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert('RGB'))
  np.testing.assert_array_equal(decoded, grid)


def test_tensorboard_audio_is_a_playable_wav(tmp_path):
  import io
  import wave

  tone = 0.5 * np.sin(np.arange(800) * 2 * np.pi * 440 / 8000)
  with MetricWriter(tmp_path) as writer:
    writer.write_audio(7, 'samples/audio_0', tone, 8000)
    with pytest.raises(ValueError, match='mono audio'):
      writer.write_audio(7, 'stereo', np.zeros((10, 2)), 8000)
  ((tag, step, clip),) = _read_tensorboard(tmp_path / 'tensorboard')
  assert (tag, step, clip.content_type, clip.sample_rate) == (
    'samples/audio_0',
    7,
    'audio/wav',
    8000,
  )
  with wave.open(io.BytesIO(clip.encoded_audio_string)) as f:
    assert (f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()) == (
      1,
      2,
      8000,
      800,
    )
    pcm = np.frombuffer(f.readframes(800), '<i2')
  np.testing.assert_allclose(pcm / 32767, tone, atol=1e-4)


def test_disabled_writer_writes_nothing(tmp_path):
  workdir = tmp_path / 'run'
  with MetricWriter(workdir, enabled=False) as writer:
    writer.write(1, 'train', {'loss': 1.0})
    writer.write_images(1, 'samples', np.zeros((4, 4, 3), np.uint8))
    writer.flush()
  assert not workdir.exists()
  assert read_metrics(workdir) == []


# ---------------------------------------------------------------- images


@pytest.mark.parametrize(
  'n, ncol, rows, cols',
  [(10, None, 3, 4), (16, None, 4, 4), (5, 2, 3, 2), (3, 8, 1, 3), (1, None, 1, 1)],
)
def test_grid_shape(n, ncol, rows, cols):
  grid = make_grid(np.zeros((n, 28, 20, 1)), ncol=ncol, pad=2)
  assert grid.dtype == np.uint8
  assert grid.shape == (rows * (28 + 2) + 2, cols * (20 + 2) + 2, 3)


def test_grid_placement_padding_and_conversion():
  images = np.zeros((3, 2, 2, 1), np.float32)
  images[1] = 1.0
  images[2] = 0.5
  grid = make_grid(images, ncol=2, pad=1, pad_value=0.0)  # 2 x 2 cells, last one empty
  assert grid.shape == (7, 7, 3)
  assert np.all(grid[1:3, 1:3] == 0) and np.all(grid[1:3, 4:6] == 255)
  assert np.all(grid[4:6, 1:3] == 128)  # round(0.5 * 255)
  assert np.all(grid[4:6, 4:6] == 0) and np.all(grid[0] == 0)  # empty cell and border
  assert np.all(grid[..., 0] == grid[..., 2])  # grayscale repeated into RGB
  rgb = make_grid(np.full((2, 3, 3, 3), 200, np.uint8), pad=0)
  assert rgb.shape == (3, 6, 3) and np.all(rgb == 200)
  with pytest.raises(ValueError, match='C in'):
    make_grid(np.zeros((2, 3, 3, 2)))


def test_upscale():
  grid = np.arange(4, dtype=np.uint8).reshape(2, 2)
  np.testing.assert_array_equal(
    upscale(grid, 2), [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
  )
  with pytest.raises(ValueError):
    upscale(grid, 0)


def test_save_png_round_trip(tmp_path):
  images = np.random.default_rng(0).random((6, 28, 28, 1))
  path = save_png(tmp_path / 'samples' / 'step_000100.png', images, scale=1)
  assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
  np.testing.assert_array_equal(np.asarray(Image.open(path)), make_grid(images))

  # Default scale: 28-pixel cells are doubled to 56.
  path = save_png(tmp_path / 'big.png', images)
  height, width, _ = make_grid(images).shape
  assert np.asarray(Image.open(path)).shape == (2 * height, 2 * width, 3)

  # A single HWC image and a single grayscale image are written as they are.
  single = np.random.default_rng(1).integers(0, 256, (64, 48, 3), dtype=np.uint8)
  for name, image in [('rgb.png', single), ('gray.png', single[..., 0])]:
    written = np.asarray(Image.open(save_png(tmp_path / name, image)))
    np.testing.assert_array_equal(written, image)
