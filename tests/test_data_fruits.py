"""Tests for genjax.data.fruits: the procedural fruit images and their anomaly split."""

import numpy as np
import pytest

from genjax.data import fruits
from genjax.data.fruits import CLASSES, generate_fruits, load_fruits


def _blueness(images: np.ndarray) -> np.ndarray:
  """Blue minus the larger of red and green, per pixel: high only for saturated blue."""
  i = images.astype(np.int16)
  return i[..., 2] - np.maximum(i[..., 0], i[..., 1])


@pytest.fixture(scope='module')
def normal():
  return generate_fruits(1500, seed=0)


def test_shapes_and_dtypes(normal):
  images, labels = normal
  assert images.shape == (1500, 32, 32, 3) and images.dtype == np.uint8
  assert labels.shape == (1500,) and labels.dtype == np.int32
  images, labels = generate_fruits(3, seed=1, size=48, anomaly=True)
  assert images.shape == (3, 48, 48, 3) and labels.tolist() == [0, 0, 0]
  images, labels = generate_fruits(0, seed=1)
  assert images.shape == (0, 32, 32, 3) and labels.shape == (0,)


def test_deterministic_and_sliceable(normal):
  images, labels = normal
  again, again_labels = generate_fruits(1500, seed=0)
  np.testing.assert_array_equal(again, images)
  np.testing.assert_array_equal(again_labels, labels)
  # Any slice is regenerated identically, wherever it falls relative to the render chunks.
  for start, num in [(0, 7), (511, 300), (1499, 1)]:
    part, part_labels = generate_fruits(num, seed=0, start=start)
    np.testing.assert_array_equal(part, images[start : start + num])
    np.testing.assert_array_equal(part_labels, labels[start : start + num])


def test_image_does_not_depend_on_chunking(normal, monkeypatch):
  monkeypatch.setattr(fruits, '_PIXELS_PER_CHUNK', 37 * 32 * 32)
  images, _ = generate_fruits(200, seed=0)
  np.testing.assert_array_equal(images, normal[0][:200])


def test_same_fruit_at_every_resolution(normal):
  _, labels = generate_fruits(50, seed=0, size=64)
  np.testing.assert_array_equal(labels, normal[1][:50])


def test_different_seeds_differ(normal):
  images, labels = generate_fruits(100, seed=1)
  assert not np.array_equal(labels, normal[1][:100])
  assert all(not np.array_equal(a, b) for a, b in zip(images, normal[0]))


def test_classes_balanced(normal):
  counts = np.bincount(normal[1], minlength=len(CLASSES))
  assert len(counts) == 5
  expected = len(normal[1]) / 5
  assert np.all(np.abs(counts - expected) < 0.2 * expected), counts


def test_images_vary(normal):
  images = normal[0].astype(np.float32)
  # Not blank: a fruit on every image stands out from its background.
  assert np.all(images.reshape(len(images), -1).std(axis=1) > 5)
  # Random backgrounds, positions and shades: no two images alike.
  assert images.std(axis=0).mean() > 20


def test_anomalies_are_blue_and_normal_fruits_never_are(normal):
  anomalies, labels = generate_fruits(500, seed=0, anomaly=True)
  assert labels.tolist() == [0] * 500
  # No saturated blue anywhere in normal data (backgrounds are muted, fruits never blue).
  assert _blueness(normal[0]).max() < 60
  # Every blue apple shows clearly blue pixels, and on average many of them.
  blue_fraction = (_blueness(anomalies) >= 60).mean(axis=(1, 2))
  assert blue_fraction.min() > 0.01 and blue_fraction.mean() > 0.1

  # And the colour shift is visible in plain channel means too.
  def blue_minus_red(x):
    return (x[..., 2].astype(np.float64) - x[..., 0]).mean()

  assert blue_minus_red(anomalies) > blue_minus_red(normal[0]) + 20


def test_splits_are_disjoint_and_sized(normal):
  train, train_labels = load_fruits('train', 300)
  np.testing.assert_array_equal(train, normal[0][:300])  # train is the seed's stream
  test, test_labels = load_fruits('test', 300)
  anomaly, _ = load_fruits('anomaly', 50)
  assert test.shape == (300, 32, 32, 3) and anomaly.shape == (50, 32, 32, 3)
  seen = {image.tobytes() for image in train}
  assert not any(image.tobytes() in seen for image in test)
  assert not any(image.tobytes() in seen for image in anomaly)
  assert fruits.SPLITS == {'train': 50_000, 'test': 10_000, 'anomaly': 2_000}


def test_bad_arguments():
  with pytest.raises(ValueError, match="'train', 'test', 'anomaly'"):
    load_fruits('validation')
  with pytest.raises(ValueError):
    generate_fruits(-1, seed=0)
  with pytest.raises(ValueError):
    generate_fruits(1, seed=0, size=4)
