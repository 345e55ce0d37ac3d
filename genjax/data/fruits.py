"""Fruits: a procedural RGB image dataset, the framework's offline default.

Five classes (apple, banana, orange, grapes, pear), each drawn with a random position,
size, rotation, colour shade, light direction and background, so that a model has to
learn shapes and colours rather than memorise pixels. The anomaly split holds BLUE
apples: a hue no normal fruit ever has, for anomaly detection (train on normal data,
score the blue apples).

Image i is a pure function of (seed, start + i, size, anomaly): its random numbers
come from a counter-based hash of (seed, stream, index, slot), so any slice can be
regenerated identically, in any batch, and the same index gives the same fruit at
every resolution. Rendering is vectorised over chunks of images. Edges are
anti-aliased analytically: every shape is a signed distance field, and a pixel's
coverage is its distance to the edge in pixel units (exact for straight edges, much
cheaper than supersampling).
"""

from __future__ import annotations

import functools

import numpy as np

from genjax.data import fruit_drawing as draw
from genjax.data import image_sets
from genjax.data.spec import Dataset

CLASSES = ('apple', 'banana', 'orange', 'grapes', 'pear')
SPLITS = {'train': 50_000, 'test': 10_000, 'anomaly': 2_000}  # default sizes
# Test images use indices from here on: far past any train index, so never the same.
_TEST_START = 1 << 40
_PIXELS_PER_CHUNK = 1 << 19  # about 512 images of 32x32 at a time: fits in cache
_NOISE_TILE = 127

# One uniform random number per slot per image; then draw.GRAPE_SLOTS per grape.
_SLOTS = (
  'cls',
  'x',
  'y',
  'scale',
  'rot',
  'aspect',
  'variant',
  'hue',
  'sat',
  'val',
  'hue2',
  'tone',
  'tone_dir',
  'light_az',
  'light_el',
  'bg_hue',
  'bg_sat',
  'bg_val',
  'bg_dir',
  'bg_amt',
  'noise_x',
  'noise_y',
  'noise_amt',
  'leaf',
  'leaf_ang',
  'leaf_hue',
  'stem_bend',
  'detail_x',
  'detail_y',
  'curve',
)
_NUM_UNIFORMS = len(_SLOTS) + draw.GRAPE_SLOTS * len(draw.GRAPES)


# ------------------------------------------------------------------ random numbers

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SLOT_MULT = np.uint64(0xD1B54A32D192ED03)


def _mix(x: np.ndarray) -> np.ndarray:
  """splitmix64's finaliser: a bijective, well-mixing hash of uint64 arrays."""
  x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
  x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return x ^ (x >> np.uint64(31))


def _uniforms(seed: int, stream: int, indices: np.ndarray) -> np.ndarray:
  """[len(indices), _NUM_UNIFORMS] float64 in [0, 1): a pure function of each index."""
  key = _mix(np.array([seed % (1 << 64)], dtype=np.uint64) + _GOLDEN)
  key = _mix(key ^ np.uint64(stream))
  per_image = _mix(key + indices.astype(np.uint64) * _GOLDEN)
  slots = np.arange(1, _NUM_UNIFORMS + 1, dtype=np.uint64) * _SLOT_MULT
  bits = _mix(per_image[:, None] ^ slots[None, :])
  return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


@functools.cache
def _noise_tile() -> np.ndarray:
  return (
    np.random.default_rng(0x5EED).standard_normal((_NOISE_TILE, _NOISE_TILE)).astype(np.float32)
  )


def _background(p: draw.Params, coords: np.ndarray, noise: np.ndarray) -> np.ndarray:
  base = draw.hsv_to_rgb(
    p['bg_hue'] * 360.0, draw.lerp(0.04, 0.22, p['bg_sat']), draw.lerp(0.35, 0.95, p['bg_val'])
  ).astype(np.float32)
  cos, sin = draw.cos_sin(p['bg_dir'] * 2 * np.pi)
  amount = draw.lerp(-0.25, 0.25, p['bg_amt'])
  gx = draw.col(cos * amount)
  gy = draw.col(sin * amount)
  grain = draw.col(draw.lerp(0.004, 0.022, p['noise_amt']))
  lum = 1.0 + coords[None, None, :] * gx + coords[None, :, None] * gy + noise * grain
  return base[:, None, None, :] * lum[..., None]


def _render_chunk(u: np.ndarray, size: int, anomaly: bool) -> tuple[np.ndarray, np.ndarray]:
  """Renders one chunk: [n, _NUM_UNIFORMS] uniforms -> uint8 images, int32 labels."""
  p = {name: u[:, i] for i, name in enumerate(_SLOTS)}
  for k in range(len(draw.GRAPES)):
    for j in range(draw.GRAPE_SLOTS):
      p[f'g{k}_{j}'] = u[:, len(_SLOTS) + draw.GRAPE_SLOTS * k + j]
  n = len(u)
  labels = np.zeros(n, np.int32) if anomaly else np.minimum(p['cls'] * 5, 4).astype(np.int32)

  coords = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0  # pixel centres
  ox = (p['noise_x'] * _NOISE_TILE).astype(np.int64)[:, None, None]
  oy = (p['noise_y'] * _NOISE_TILE).astype(np.int64)[:, None, None]
  pix = np.arange(size)
  noise = _noise_tile()[
    (pix[None, :, None] + oy) % _NOISE_TILE, (pix[None, None, :] + ox) % _NOISE_TILE
  ]
  images = _background(p, coords, noise)

  # Fruit placement and lighting, per image.
  scale = draw.lerp(0.48, 0.7, p['scale'])
  room = np.maximum(0.9 - scale, 0.05)
  cx, cy = draw.lerp(-1, 1, p['x']) * room, draw.lerp(-1, 1, p['y']) * room
  spin = np.where(labels == 1, np.pi, 0.6)  # bananas lie any way; others stand roughly up
  cos, sin = draw.cos_sin(draw.lerp(-1, 1, p['rot']) * spin)
  az_cos, az_sin = draw.cos_sin(p['light_az'] * 2 * np.pi)
  el_cos, el_sin = draw.cos_sin(draw.lerp(0.5, 1.2, p['light_el']))
  lx, ly, lz = el_cos * az_cos, el_cos * az_sin, el_sin
  llx, lly = cos * lx + sin * ly, cos * ly - sin * lx  # into the fruit's frame
  norm = np.sqrt(llx**2 + lly**2 + (lz + 1.0) ** 2)

  for c in range(len(CLASSES)):
    idx = np.flatnonzero(labels == c)
    if not len(idx):
      continue
    dx = coords[None, None, :] - draw.col(cx[idx])
    dy = coords[None, :, None] - draw.col(cy[idx])
    c_, s_, sc = draw.col(cos[idx]), draw.col(sin[idx]), draw.col(scale[idx])
    fr = draw.Frame(
      u=(c_ * dx + s_ * dy) / sc,
      v=(c_ * dy - s_ * dx) / sc,
      to_px=sc * (size / 2.0),
      light=(draw.col(llx[idx]), draw.col(lly[idx]), draw.col(lz[idx])),
      half=(
        draw.col(llx[idx] / norm[idx]),
        draw.col(lly[idx] / norm[idx]),
        draw.col((lz[idx] + 1.0) / norm[idx]),
      ),
      noise=noise[idx],
    )
    sub = {k: v[idx] for k, v in p.items()}
    img = images[idx]
    # Soft shadow on the background, cast away from the light.
    bx, by, rx, ry = draw.SHADOW_BLOB[c]
    bu = (fr.u - bx + 0.25 * fr.light[0]) / rx
    bv = (fr.v - by + 0.25 * fr.light[1]) / ry
    blob = (np.sqrt(bu * bu + bv * bv) - 1.0) * min(rx, ry)
    shadow = np.clip(0.5 - blob / 0.3, 0.0, 1.0)
    img = img * (1.0 - 0.3 * shadow)[..., None]
    layers = draw.apple(fr, sub, blue=True) if anomaly else draw.RENDERERS[c](fr, sub)
    for alpha, rgb in layers:
      img = img + (rgb - img) * alpha[..., None]
    images[idx] = img
  out = np.floor(np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
  return out, labels


def generate_fruits(
  num: int, seed: int, size: int = 32, anomaly: bool = False, start: int = 0
) -> tuple[np.ndarray, np.ndarray]:
  """Renders fruit images start .. start + num - 1 of the stream `seed`.

  Args:
    num: number of images.
    seed: stream seed; any int.
    size: side length in pixels (>= 8).
    anomaly: draw blue apples (label 0) instead of the five normal classes.
    start: index of the first image; `generate_fruits(n, s, start=k)` equals
      `generate_fruits(k + n, s)[k:]`.

  Returns:
    images uint8 [num, size, size, 3] and labels int32 [num] (indices into CLASSES).
  """
  if num < 0 or start < 0:
    raise ValueError(f'num and start must be >= 0, got num={num}, start={start}.')
  if size < 8:
    raise ValueError(f'size must be >= 8 pixels, got {size}.')
  images = np.empty((num, size, size, 3), np.uint8)
  labels = np.empty(num, np.int32)
  chunk = max(1, _PIXELS_PER_CHUNK // (size * size))
  for lo in range(0, num, chunk):
    hi = min(lo + chunk, num)
    indices = np.arange(start + lo, start + hi, dtype=np.uint64)
    images[lo:hi], labels[lo:hi] = _render_chunk(
      _uniforms(seed, int(anomaly), indices), size, anomaly
    )
  return images, labels


def load_fruits(
  split: str, num: int | None = None, seed: int = 0, size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
  """One split of the fruits dataset: 'train', 'test' or 'anomaly' (blue apples).

  The splits come from disjoint streams (test starts at index 2**40 of the train
  stream; anomalies have their own), so test never repeats a training image. `num`
  defaults to 50,000 / 10,000 / 2,000; a smaller `num` gives a prefix of the default.
  """
  if split not in SPLITS:
    raise ValueError(f'Unknown fruits split {split!r}; expected one of {tuple(SPLITS)}.')
  num = SPLITS[split] if num is None else num
  if split == 'anomaly':
    return generate_fruits(num, seed, size, anomaly=True)
  return generate_fruits(num, seed, size, start=_TEST_START if split == 'test' else 0)


# The dataset registered as 'fruits' (genjax.data.datasets).


def add_config_fields(c) -> None:
  image_sets.add_config_fields(c)


def dataset(data, workdir: str | None = None) -> Dataset:
  """Generated fruits at `data.image_size` (default 32): train, test and blue apples."""
  image_sets.refuse(data, 'digits', 'binarize', 'path')
  size = data.image_size or 32
  splits = {
    name: image_sets.labelled(*load_fruits(name, data[field] or None, size=size))
    for name, field in (('train', 'num_train'), ('test', 'num_test'), ('anomaly', 'num_anomaly'))
  }
  return image_sets.finish(data, splits, workdir, num_classes=len(CLASSES))
