"""Arranging images into the [rows, cols, H, W, C] layouts that launch.sample draws."""

from __future__ import annotations

import numpy as np


def rows(images: np.ndarray, cols: int) -> np.ndarray:
  """[N, H, W, C] -> [rows, cols, H, W, C], padding the last row with blanks."""
  n_rows = int(np.ceil(len(images) / cols))
  pad = n_rows * cols - len(images)
  images = np.concatenate([images, np.ones((pad, *images.shape[1:]), images.dtype)])
  return images.reshape(n_rows, cols, *images.shape[1:])


def interleave(*groups: np.ndarray, cols: int = 8) -> np.ndarray:
  """Row i of each group one under another (inputs over outputs): [k * rows, cols, ...]."""
  laid_out = [rows(g, cols) for g in groups]
  return np.stack(laid_out, axis=1).reshape(-1, *laid_out[0].shape[1:])


def square(images: np.ndarray) -> np.ndarray:
  return rows(images, int(np.ceil(np.sqrt(len(images)))))
