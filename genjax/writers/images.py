"""Image grids and PNG files for samples and reconstructions."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

# save_png's default upscaling makes each grid cell at least this many pixels
# tall, so 28 x 28 MNIST digits are shown at 56 x 56 (x2) and 64 x 64 images at x1.
MIN_CELL_PIXELS = 56


def _to_uint8(images: np.ndarray) -> np.ndarray:
  """uint8 stays; anything else is taken as [0, 1], clipped, and rounded to 0..255."""
  if images.dtype == np.uint8:
    return images
  return np.round(np.clip(images.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def make_grid(
  images: ArrayLike, ncol: int | None = None, pad: int = 1, pad_value: float = 1.0
) -> np.ndarray:
  """Tiles a batch into one uint8 RGB image.

  Args:
    images: [N, H, W, C] (or [N, H, W]) with C in {1, 3}; float in [0, 1]
      (clipped) or uint8.
    ncol: images per row; default ceil(sqrt(N)), capped at N.
    pad: pixels of border around and between cells.
    pad_value: border and empty-cell colour in [0, 1] (1.0 = white).

  Returns:
    [nrow * (H + pad) + pad, ncol * (W + pad) + pad, 3] uint8, where
    nrow = ceil(N / ncol); grayscale is repeated into 3 channels; images fill
    rows left to right, top to bottom.
  """
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.shape[0] == 0:
    raise ValueError(
      f'make_grid expects a non-empty [N, H, W, C] batch with C in (1, 3), '
      f'got shape {images.shape}.'
    )
  if pad < 0:
    raise ValueError(f'pad must be >= 0, got {pad}.')
  n, h, w, c = images.shape
  ncol = math.ceil(math.sqrt(n)) if ncol is None else ncol
  if ncol < 1:
    raise ValueError(f'ncol must be >= 1, got {ncol}.')
  ncol = min(ncol, n)
  nrow = math.ceil(n / ncol)
  images = _to_uint8(images)
  if c == 1:
    images = np.repeat(images, 3, axis=-1)
  fill = int(round(min(max(pad_value, 0.0), 1.0) * 255))
  grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, 3), fill, dtype=np.uint8)
  for i in range(n):
    row, col = divmod(i, ncol)
    top, left = pad + row * (h + pad), pad + col * (w + pad)
    grid[top : top + h, left : left + w] = images[i]
  return grid


def upscale(grid: np.ndarray, factor: int) -> np.ndarray:
  """Nearest-neighbour upscaling of an [H, W, ...] image by an integer factor."""
  if factor < 1 or int(factor) != factor:
    raise ValueError(f'upscale factor must be a positive integer, got {factor}.')
  factor = int(factor)
  if factor == 1:
    return grid
  return np.repeat(np.repeat(grid, factor, axis=0), factor, axis=1)


def save_png(
  path: str | os.PathLike,
  array_or_images: ArrayLike,
  ncol: int | None = None,
  pad: int = 1,
  pad_value: float = 1.0,
  scale: int | None = None,
) -> Path:
  """Saves a batch (as a make_grid grid) or a single image as a PNG, atomically.

  How the input is read:
    [N, H, W, C]                      a batch -> make_grid
    [H, W, C] with C in {1, 3, 4}     one image
    [H, W]                            one grayscale image
    [N, H, W] otherwise               a batch of grayscale images -> make_grid
  Floats are taken as [0, 1]; uint8 as is.

  Args:
    path: the .png file; parent directories are created.
    scale: integer nearest-neighbour upscaling; None picks the smallest factor
      that makes a cell (or the single image) at least MIN_CELL_PIXELS tall.

  Returns:
    The path written. The file is written to a temporary name in the same
    directory and renamed, so readers never see a half-written PNG.
  """
  array = np.asarray(array_or_images)
  is_batch = array.ndim == 4 or (array.ndim == 3 and array.shape[-1] not in (1, 3, 4))
  if is_batch:
    cell_height = array.shape[1]
    image = make_grid(array, ncol=ncol, pad=pad, pad_value=pad_value)
  elif array.ndim in (2, 3):
    cell_height = array.shape[0]
    image = _to_uint8(array)
    if image.ndim == 3 and image.shape[-1] == 1:
      image = image[..., 0]
  else:
    raise ValueError(f'save_png cannot read an array of shape {array.shape} as image(s).')
  if scale is None:
    scale = max(1, math.ceil(MIN_CELL_PIXELS / max(cell_height, 1)))
  image = upscale(image, scale)

  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
  try:
    Image.fromarray(image).save(tmp, format='PNG')
    os.replace(tmp, path)
  finally:
    if tmp.exists():
      tmp.unlink()
  return path
