"""Pixel-space reconstruction metrics: MSE and PSNR.

All computations are in float64 numpy; numpy and jax arrays are both accepted
(jax arrays are copied to host). The first axis is the batch axis.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _pair(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
  x = np.asarray(x, dtype=np.float64)
  y = np.asarray(y, dtype=np.float64)
  if x.shape != y.shape:
    raise ValueError(f'shapes differ: {x.shape} vs {y.shape}.')
  if x.ndim == 0 or x.shape[0] == 0:
    raise ValueError(f'expected a non-empty batch [N, ...], got shape {x.shape}.')
  return x, y


def mse(x: ArrayLike, y: ArrayLike) -> float:
  """Mean squared error over every element of the batch (per pixel and channel)."""
  x, y = _pair(x, y)
  return float(np.mean((x - y) ** 2))


def per_image_mse(x: ArrayLike, y: ArrayLike) -> np.ndarray:
  """[N] mean squared error of each image, averaged over its pixels and channels."""
  x, y = _pair(x, y)
  return np.mean((x - y).reshape(x.shape[0], -1) ** 2, axis=1)


def psnr(x: ArrayLike, y: ArrayLike, max_value: float = 1.0) -> float:
  """Peak signal-to-noise ratio in dB, computed PER IMAGE and then averaged.

  PSNR_i = 10 log10(max_value^2 / MSE_i); the result is mean_i PSNR_i. This is
  not 10 log10(max^2 / mean MSE), which weights badly reconstructed images less.

  An image reconstructed exactly has MSE_i = 0 and PSNR_i = +inf, so the mean
  is +inf if any image is exact; that is the honest value, and callers that want
  a finite number should clip MSE themselves.

  Args:
    x, y: [N, ...] images on the same scale.
    max_value: the largest possible pixel value (1.0 for [0, 1], 255 for uint8).
  """
  per_image = per_image_mse(x, y)
  with np.errstate(divide='ignore'):
    values = 10.0 * np.log10(max_value**2 / per_image)
  return float(np.mean(values))
