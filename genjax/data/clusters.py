"""k-means clusters of training images: labels for self-conditioning without labels.

A GAN conditioned on cluster ids (Liu et al. 2020, "Diverse image generation via
self-conditioned GANs"; Sage et al. 2018, "Logo synthesis and manipulation with
clustered generative adversarial networks") has an easier task than an unconditional
one: each condition covers one tight mode of the data, as a class label would, yet no
label is used. Clusters are found by k-means on the top principal components of the
pixels, seeded, so the same images always give the same clusters; `assign` then labels
any image by its nearest centroid.
"""

from __future__ import annotations

import dataclasses
import os
import uuid

import numpy as np

from genjax.config import ConfigError
from genjax.evaluation import pca

FILENAME = 'clusters.npz'


@dataclasses.dataclass(frozen=True)
class Clusters:
  mean: np.ndarray  # [D] pixel mean (pixels in [0, 1])
  components: np.ndarray  # [P, D] principal directions
  centroids: np.ndarray  # [K, P] in PCA coordinates
  labels: np.ndarray  # [N] int32 cluster of each training image

  @property
  def num_clusters(self) -> int:
    return len(self.centroids)

  def prior(self) -> np.ndarray:
    """[K] share of the training images in each cluster: how often to draw each."""
    return shares(self.labels, self.num_clusters)

  def assign(self, images: np.ndarray) -> np.ndarray:
    """[N] int32 nearest-centroid cluster of uint8 images [N, H, W, C]."""
    return _nearest(_project(images, self.mean, self.components), self.centroids)


def shares(labels: np.ndarray, num_clusters: int) -> np.ndarray:
  """[K] share of `labels` [N] in each of clusters 0..K-1."""
  return np.bincount(labels, minlength=num_clusters) / len(labels)


def _project(images: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
  flat = images.reshape(len(images), -1).astype(np.float64) / 255.0
  return (flat - mean) @ components.T


def _nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
  distances = (
    np.sum(points**2, 1)[:, None] - 2.0 * points @ centroids.T + np.sum(centroids**2, 1)[None, :]
  )
  return np.argmin(distances, axis=1).astype(np.int32)


def fit(
  images: np.ndarray,
  num_clusters: int,
  num_components: int = 40,
  seed: int = 0,
  iterations: int = 50,
) -> Clusters:
  """k-means (k-means++ seeding, Lloyd iterations) on PCA coordinates of uint8 images."""
  if not 0 < num_clusters <= len(images):
    raise ValueError(
      f'num_clusters={num_clusters} must be in 1..{len(images)} (the number of training images).'
    )
  mean, components = pca.fit_pca(
    images.astype(np.float64) / 255.0, min(num_components, int(np.prod(images.shape[1:])))
  )
  points = _project(images, mean, components)
  rng = np.random.default_rng(seed)
  centroids = points[[rng.integers(len(points))]]
  closest = np.sum((points - centroids[0]) ** 2, 1)
  for _ in range(1, num_clusters):  # k-means++: far points are likelier next centroids
    pick = rng.choice(len(points), p=closest / closest.sum())
    centroids = np.concatenate([centroids, points[pick][None]])
    closest = np.minimum(closest, np.sum((points - points[pick]) ** 2, 1))
  labels = _nearest(points, centroids)
  for _ in range(iterations):
    counts = np.bincount(labels, minlength=num_clusters)
    sums = np.zeros_like(centroids)
    np.add.at(sums, labels, points)
    # An emptied cluster keeps its old centroid rather than dividing by zero.
    centroids = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centroids)
    new_labels = _nearest(points, centroids)
    if np.array_equal(new_labels, labels):
      break
    labels = new_labels
  return Clusters(mean, components, centroids, labels)


def save(clusters: Clusters, workdir: str) -> None:
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, FILENAME)
  # Unique per writer (hosts of one run may share the workdir); np.savez adds .npz to
  # names without it.
  tmp = f'{path}.{uuid.uuid4().hex}.tmp.npz'
  np.savez(tmp, **dataclasses.asdict(clusters))
  os.replace(tmp, path)  # readers never see half a file


def load_or_fit(images: np.ndarray, num_clusters: int, workdir: str | None) -> Clusters:
  """The workdir's saved clusters (so a resumed or evaluated run sees the very same
  ones), else clusters fitted now and saved there."""
  path = os.path.join(workdir, FILENAME) if workdir else None
  if path and os.path.exists(path):
    with np.load(path) as saved:
      clusters = Clusters(**{f.name: saved[f.name] for f in dataclasses.fields(Clusters)})
    if clusters.num_clusters == num_clusters and len(clusters.labels) == len(images):
      return clusters
    raise ConfigError(
      f'{path} holds {clusters.num_clusters} clusters of {len(clusters.labels)} images, but '
      f'the config asks for {num_clusters} of {len(images)}: use a fresh --workdir, or '
      f'delete {path} to recluster (the trained model then no longer matches).'
    )
  clusters = fit(images, num_clusters)
  if workdir:
    save(clusters, workdir)
  return clusters
