"""k-means clusters of training images: found, reproducible, saved with the run."""

import numpy as np
import pytest

from genjax.config import ConfigError
from genjax.data import clusters


def _blobs(num_per_blob=50, num_blobs=4, seed=0):
  """uint8 images [N, 6, 6, 1]: each blob a distinct bright square plus a little noise."""
  rng = np.random.default_rng(seed)
  images, truth = [], []
  for b in range(num_blobs):
    base = np.zeros((6, 6, 1))
    base[b // 2 * 3 : b // 2 * 3 + 3, b % 2 * 3 : b % 2 * 3 + 3] = 200
    noise = rng.integers(0, 30, (num_per_blob, 6, 6, 1))
    images.append(base + noise)
    truth += [b] * num_per_blob
  order = rng.permutation(len(truth))
  return np.concatenate(images).astype(np.uint8)[order], np.asarray(truth)[order]


def test_kmeans_recovers_separated_blobs_and_is_reproducible():
  images, truth = _blobs()
  found = clusters.fit(images, 4, num_components=5)
  # Each cluster is exactly one blob (up to renaming).
  pairs = set(zip(found.labels.tolist(), truth.tolist()))
  assert len(pairs) == 4 and len({p[0] for p in pairs}) == 4
  np.testing.assert_allclose(found.prior(), [0.25] * 4)
  np.testing.assert_array_equal(found.assign(images), found.labels)
  again = clusters.fit(images, 4, num_components=5)
  np.testing.assert_array_equal(again.labels, found.labels)
  assert found.labels.dtype == np.int32


def test_clusters_are_saved_in_the_workdir_and_reused(tmp_path):
  images, _ = _blobs()
  first = clusters.load_or_fit(images, 4, str(tmp_path))
  assert (tmp_path / clusters.FILENAME).exists()
  assert not [p for p in tmp_path.iterdir() if 'tmp' in p.name]
  # A saved file wins over refitting: change the data and the labels stay the saved ones.
  reused = clusters.load_or_fit(images[::-1].copy(), 4, str(tmp_path))
  np.testing.assert_array_equal(reused.labels, first.labels)
  np.testing.assert_array_equal(reused.centroids, first.centroids)
  with pytest.raises(ConfigError, match='holds 4 clusters of 200 images.*asks for 5'):
    clusters.load_or_fit(images, 5, str(tmp_path))


def test_bad_cluster_counts_fail_clearly():
  images, _ = _blobs(num_per_blob=2)
  with pytest.raises(ValueError, match='num_clusters=9 must be in 1..8'):
    clusters.fit(images, 9)
  with pytest.raises(ValueError, match='num_clusters=0'):
    clusters.fit(images, 0)
