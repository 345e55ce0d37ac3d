"""PCA reconstruction: the linear baseline for autoencoders.

An autoencoder with a k-dimensional code should beat the best linear k-dim
code, which is PCA. Fitting uses the eigendecomposition of the D x D covariance
(accumulated in chunks, float64), which for MNIST (60000 x 784) costs one
784 x 784 eigh instead of a 60000 x 784 SVD.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

# Rows per chunk when accumulating the covariance: bounds the float64 copy.
_CHUNK_ROWS = 8192


def _flatten(x: ArrayLike) -> np.ndarray:
  x = np.asarray(x)
  if x.ndim < 2:
    raise ValueError(f'expected a batch [N, ...] of at least 2 dims, got shape {x.shape}.')
  return x.reshape(x.shape[0], -1)


def fit_pca(train: ArrayLike, k: int) -> tuple[np.ndarray, np.ndarray]:
  """Fits PCA on flattened `train` [N, ...].

  Args:
    train: [N, ...] examples; flattened to [N, D].
    k: number of principal directions, 0 <= k <= D.

  Returns:
    mean: [D] float64 training mean.
    components: [k, D] float64 orthonormal rows, by decreasing variance. Each
      row's sign is fixed (largest-magnitude entry positive) so results are
      reproducible across LAPACK builds.
  """
  flat = _flatten(train)
  n, d = flat.shape
  if not 0 <= k <= d:
    raise ValueError(f'fit_pca: num_components must be in [0, {d}] (the data dimension), got {k}.')
  mean = flat.mean(axis=0, dtype=np.float64)
  scatter = np.zeros((d, d), dtype=np.float64)
  for start in range(0, n, _CHUNK_ROWS):
    centred = flat[start : start + _CHUNK_ROWS].astype(np.float64) - mean
    scatter += centred.T @ centred
  # eigh returns ascending eigenvalues; the top k are the last k columns.
  _, vectors = np.linalg.eigh(scatter / n)
  components = vectors[:, ::-1][:, :k].T.copy()
  if k:
    biggest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(k), biggest])
    components *= signs[:, None]
  return mean, components


def pca_reconstruct(x: ArrayLike, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
  """Projects `x` [N, ...] onto the PCA subspace and maps back; float64, same shape as x."""
  x = np.asarray(x)
  centred = _flatten(x).astype(np.float64) - mean
  recon = (centred @ components.T) @ components + mean
  return recon.reshape(x.shape)


def pca_reconstruction_mse(train: np.ndarray, test: np.ndarray, num_components: int) -> float:
  """Per-pixel MSE of reconstructing `test` with a PCA fitted on `train`.

  Both arrays must be on the scale the autoencoder is scored on (e.g. [0, 1]).
  With num_components = 0 this is the mean squared deviation of test from the
  train mean; with num_components = D it is ~0.
  """
  mean, components = fit_pca(train, num_components)
  test = np.asarray(test)
  recon = pca_reconstruct(test, mean, components)
  return float(np.mean((recon - test.astype(np.float64)) ** 2))
