"""Sample-quality metrics for generative image models: FID, IS, precision/recall, coverage.

The functions here take features or class probabilities, not images: callers compute
them with a trained classifier (``genjax.models.classifier.Classifier``: ``features``
for FID and precision/recall, ``softmax(logits)`` for IS and class coverage), using
``batched_apply`` to run it over many images. FID and IS from our classifier are not
comparable with Inception-based numbers in papers, only between our own runs scored
with the same classifier checkpoint.

FID and IS are computed in float64 numpy; the k-NN distances of precision/recall in
float32 jax, in batches.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from genjax.step import parallel


def _features_2d(features: ArrayLike, name: str, min_rows: int = 1) -> np.ndarray:
  x = np.asarray(features)
  if x.ndim != 2:
    raise ValueError(f'{name}: expected features of shape [N, D], got {x.shape}.')
  if x.shape[0] < min_rows:
    raise ValueError(f'{name}: needs at least {min_rows} samples, got {x.shape[0]}.')
  if not np.all(np.isfinite(x)):
    raise ValueError(f'{name}: features contain NaN or inf.')
  return x


# ---------------------------------------------------------------------------- FID


def feature_statistics(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
  """Mean ``[D]`` and covariance ``[D, D]`` (unbiased, N - 1) of features ``[N, D]``, float64."""
  x = _features_2d(features, 'feature_statistics', min_rows=2).astype(np.float64)
  return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(mat: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix; tiny negative eigenvalues -> 0."""
  w, v = np.linalg.eigh((mat + mat.T) / 2.0)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: ArrayLike, cov1: ArrayLike, mu2: ArrayLike, cov2: ArrayLike) -> float:
  """Frechet distance between N(mu1, cov1) and N(mu2, cov2), float64.

      ||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^{1/2})

  The trace of (C1 C2)^{1/2} equals Tr((C1^{1/2} C2 C1^{1/2})^{1/2}), the square root
  of a symmetric PSD matrix: two eigendecompositions instead of scipy's general
  ``sqrtm``, which returns complex parts and NaNs on the singular covariances that
  fewer samples than dimensions give.

  Args:
    mu1, mu2: [D] means.
    cov1, cov2: [D, D] covariances.

  Returns:
    The distance (>= 0 up to rounding; clipped at 0).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
  d = mu1.shape[0] if mu1.ndim == 1 else -1
  if mu1.shape != (d,) or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
    raise ValueError(
      'frechet_distance: expected means [D] and covariances [D, D], got '
      f'{mu1.shape}, {cov1.shape}, {mu2.shape}, {cov2.shape}.'
    )
  if not all(np.all(np.isfinite(a)) for a in (mu1, mu2, cov1, cov2)):
    raise ValueError('frechet_distance: statistics contain NaN or inf.')
  sqrt1 = _psd_sqrt(cov1)
  middle = sqrt1 @ cov2 @ sqrt1
  eig = np.linalg.eigvalsh((middle + middle.T) / 2.0)
  trace_sqrt = np.sqrt(np.clip(eig, 0.0, None)).sum()
  diff = mu1 - mu2
  value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
  return float(max(value, 0.0))


def fid(features_a: ArrayLike, features_b: ArrayLike) -> float:
  """Frechet distance between Gaussians fitted to features ``[N_a, D]`` and ``[N_b, D]``."""
  mu_a, cov_a = feature_statistics(features_a)
  mu_b, cov_b = feature_statistics(features_b)
  return frechet_distance(mu_a, cov_a, mu_b, cov_b)


# ----------------------------------------------------------------------------- IS


def inception_score(probs: ArrayLike, splits: int = 10) -> tuple[float, float]:
  """Inception score exp(E_x KL(p(y|x) || p(y))) as in Salimans et al. (2016).

  The samples are cut into ``splits`` consecutive parts (``np.array_split``: sizes
  differ by at most one, no sample dropped); each part's score uses its own marginal
  p(y), the mean of its rows. Ranges from 1 (every sample predicted alike) to K (each
  prediction certain, and the classes used equally).

  Args:
    probs: [N, K] class probabilities, rows summing to 1 (a softmax, not logits).
    splits: number of parts, 1 <= splits <= N.

  Returns:
    (mean, std) of the per-part scores; std is 0.0 for one split.
  """
  p = np.asarray(probs, dtype=np.float64)
  if p.ndim != 2 or p.shape[0] == 0:
    raise ValueError(f'inception_score: expected probabilities [N, K], got shape {p.shape}.')
  if not 1 <= splits <= p.shape[0]:
    raise ValueError(f'inception_score: splits must be in [1, N={p.shape[0]}], got {splits}.')
  if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
    raise ValueError(
      'inception_score: rows must be probabilities summing to 1; pass softmax(logits), not logits.'
    )
  scores = []
  for part in np.array_split(p, splits):
    marginal = part.mean(axis=0, keepdims=True)
    # 0 * log 0 = 0: a class with p(y|x) = 0 contributes nothing to the KL.
    with np.errstate(divide='ignore', invalid='ignore'):
      terms = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0)
    scores.append(math.exp(terms.sum(axis=1).mean()))
  return float(np.mean(scores)), float(np.std(scores))


# --------------------------------------------------------------- precision / recall


def _sq_dists(a: jax.Array, b: jax.Array) -> jax.Array:
  """[n, m] squared Euclidean distances; one matmul, clipped at 0 against rounding."""
  d = jnp.sum(a * a, axis=1)[:, None] + jnp.sum(b * b, axis=1)[None, :] - 2.0 * a @ b.T
  return jnp.maximum(d, 0.0)


_sq_dists_jit = jax.jit(_sq_dists)


def _kth_neighbour_sq(query: jax.Array, ref: jax.Array, k: int) -> np.ndarray:
  """[n] squared distance from each query row to its k-th nearest row of ``ref``.

  The query rows are rows of ``ref``, so the nearest (index 0) is the row itself.
  The selection runs in numpy: ``np.partition`` of a [1000, 10000] block takes ~40 ms
  on one CPU core where ``lax.top_k`` (and argmin-based selections) take 0.2-3 s.
  """
  return np.partition(np.asarray(_sq_dists_jit(query, ref)), k, axis=1)[:, k]


@jax.jit
def _inside_any_ball(query: jax.Array, centres: jax.Array, radii_sq: jax.Array) -> jax.Array:
  """[n] whether each query row lies in at least one ball (centre_j, radius_j)."""
  return jnp.any(_sq_dists(query, centres) <= radii_sq[None, :], axis=1)


@functools.lru_cache(maxsize=16)
def _over_devices(fn: Callable[..., Any]) -> Callable[..., Any]:
  """``fn`` jitted once per ``fn``, its batch's rows split over every local device."""
  return jax.jit(lambda args, chunk: fn(*args, parallel.spread_batch(chunk)))


def _padded_batches(x: np.ndarray, batch_size: int):
  """Yields (batch, size): row batches of x, all min(batch_size, N) rows (the last zero-padded).

  One batch shape means one compile of the jitted function applied to the batches.
  """
  n = x.shape[0]
  batch_size = min(batch_size, n)
  for start in range(0, n, batch_size):
    chunk = x[start : start + batch_size]
    size = chunk.shape[0]
    if size < batch_size:
      chunk = np.concatenate([chunk, np.zeros((batch_size - size,) + x.shape[1:], x.dtype)])
    yield jnp.asarray(chunk), size


def _map_rows(fn: Callable[[jax.Array], jax.Array], x: np.ndarray, batch_size: int) -> np.ndarray:
  """[N, ...] = fn over padded row batches of x, padding dropped."""
  return np.concatenate(
    [np.asarray(fn(chunk))[:size] for chunk, size in _padded_batches(x, batch_size)]
  )


def precision_recall(
  real_features: ArrayLike, fake_features: ArrayLike, k: int = 3, batch_size: int = 1000
) -> tuple[float, float]:
  """Improved precision and recall (Kynkaanniemi et al., 2019).

  Each set's manifold is the union of balls around its samples, each with radius the
  distance to that sample's k-th nearest neighbour in its own set. Precision is the
  share of fake samples inside the real manifold (are the samples realistic?),
  recall the share of real samples inside the fake manifold (is the data covered?).

  Distances are computed in float32 jax, ``batch_size`` query rows at a time against
  a whole set, so memory is [batch_size, N] (40 MB for 1000 x 10000); the features
  are centred on the real mean first, which keeps the one-matmul distance formula
  accurate.

  Args:
    real_features: [N_r, D] features of data samples; N_r > k.
    fake_features: [N_f, D] features of generated samples; N_f > k.
    k: neighbourhood size of the radii (3 in the paper).
    batch_size: query rows per distance batch.

  Returns:
    (precision, recall), each in [0, 1].
  """
  real = _features_2d(real_features, 'precision_recall', min_rows=k + 1)
  fake = _features_2d(fake_features, 'precision_recall', min_rows=k + 1)
  if real.shape[1] != fake.shape[1]:
    raise ValueError(f'precision_recall: feature sizes differ: {real.shape[1]} vs {fake.shape[1]}.')
  if k < 1 or batch_size < 1:
    raise ValueError(f'precision_recall: k and batch_size must be >= 1, got {k}, {batch_size}.')
  centre = real.astype(np.float64).mean(axis=0)
  real = (real - centre).astype(np.float32)
  fake = (fake - centre).astype(np.float32)
  real_j, fake_j = jnp.asarray(real), jnp.asarray(fake)

  real_radii = jnp.asarray(_map_rows(lambda q: _kth_neighbour_sq(q, real_j, k), real, batch_size))
  fake_radii = jnp.asarray(_map_rows(lambda q: _kth_neighbour_sq(q, fake_j, k), fake, batch_size))
  precision = _map_rows(lambda q: _inside_any_ball(q, real_j, real_radii), fake, batch_size)
  recall = _map_rows(lambda q: _inside_any_ball(q, fake_j, fake_radii), real, batch_size)
  return float(precision.mean()), float(recall.mean())


# ------------------------------------------------------------------- class coverage


def class_coverage(pred_labels: ArrayLike, num_classes: int) -> np.ndarray:
  """Share ``[K]`` of samples predicted as each class; sums to 1.

  A generator that covers the data's classes evenly gives shares near 1/K (for
  class-balanced data); mode collapse shows as shares far from it, or zero.

  Args:
    pred_labels: [N] integer class predictions in [0, K), or [N, K] probabilities or
      logits (their argmax is taken).
    num_classes: K.
  """
  labels = np.asarray(pred_labels)
  if labels.ndim == 2:
    if labels.shape[1] != num_classes:
      raise ValueError(
        f'class_coverage: got [N, {labels.shape[1]}] scores for num_classes={num_classes}.'
      )
    labels = labels.argmax(axis=1)
  if labels.ndim != 1 or labels.size == 0:
    raise ValueError(f'class_coverage: expected [N] labels, got shape {labels.shape}.')
  if not np.issubdtype(labels.dtype, np.integer):
    if not np.all(labels == np.round(labels)):
      raise ValueError('class_coverage: labels must be integers.')
    labels = labels.astype(np.int64)
  if labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(
      f'class_coverage: labels must lie in [0, {num_classes}), got '
      f'[{labels.min()}, {labels.max()}].'
    )
  return np.bincount(labels, minlength=num_classes).astype(np.float64) / labels.size


def coverage_summary(shares: ArrayLike) -> dict[str, float | int]:
  """``{'min_share', 'max_share', 'classes_missing'}`` of ``class_coverage`` shares [K]."""
  shares = np.asarray(shares, dtype=np.float64).reshape(-1)
  return {
    'min_share': float(shares.min()),
    'max_share': float(shares.max()),
    'classes_missing': int(np.sum(shares == 0.0)),
  }


# ------------------------------------------------------------------------ batching


def batched_apply(
  fn: Callable[..., Any], images: ArrayLike, batch_size: int = 500, args: tuple = ()
) -> Any:
  """``fn(*args, batch)`` over ``images [N, ...]`` in fixed-size batches, concatenated on host.

  ``fn`` maps a batch ``[B, ...]`` to an array ``[B, ...]`` (or a pytree of them),
  row by row, e.g. ``lambda variables, x: model.apply(variables, x, method='features')``
  with ``args=(variables,)``. Weights go in ``args``, not in ``fn``'s closure: arguments
  are inputs of the compiled program, where closed-over arrays would be baked into it as
  constants, so that new weights (the next checkpoint) would compile it again. The last
  batch is padded with zeros to ``batch_size`` (or N, when smaller) so that ``fn``
  compiles once; the padding rows are dropped from the result. The compiled ``fn`` is kept
  for the next call with the same ``fn`` object and shapes.

  Returns:
    np.ndarray [N, ...] (a pytree of them when fn returns a pytree).
  """
  images = np.asarray(images)
  if images.ndim == 0 or images.shape[0] == 0:
    raise ValueError(f'batched_apply: expected a non-empty batch [N, ...], got {images.shape}.')
  if batch_size < 1:
    raise ValueError(f'batched_apply: batch_size must be >= 1, got {batch_size}.')
  jitted = _over_devices(fn)
  args = parallel.replicate_locally(tuple(args))  # beside the rows, wherever they were put
  outputs = [
    jax.tree.map(lambda a, size=size: np.asarray(a)[:size], jitted(args, chunk))
    for chunk, size in _padded_batches(images, batch_size)
  ]
  return jax.tree.map(lambda *parts: np.concatenate(parts), *outputs)
