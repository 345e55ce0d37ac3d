"""Drawing fruits: colours, signed distance fields, lighting, one renderer a class.

Every function works on a sub-batch of images at once: per-image parameters are [n]
arrays, pixels [n, S, S]. `genjax.data.fruits` draws the random parameters and composes
the layers these renderers return over a background.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

# Grape k sits in row r of an upside-down triangle (4, 3, 2, 1 grapes per row).
GRAPES = tuple(
  (-0.69 + 0.46 * (j + (4 - n) / 2), -0.55 + 0.4 * r)
  for r, n in enumerate((4, 3, 2, 1))
  for j in range(n)
)
GRAPE_SLOTS = 3  # x jitter, y jitter, keep/shade

# HSV colour ranges (hue in degrees), as (probability, hue, saturation, value).
# Normal fruits stay out of hues 130..280: blue belongs to the anomalies alone.
_COLOURS = {
  'apple': (
    (0.55, (350, 368), (0.72, 0.9), (0.6, 0.82)),  # red
    (0.25, (80, 105), (0.55, 0.75), (0.6, 0.8)),  # green
    (0.20, (44, 56), (0.6, 0.8), (0.8, 0.95)),
  ),  # yellow
  'blue_apple': ((1.0, (220, 245), (0.65, 0.9), (0.6, 0.9)),),
  'banana': (
    (0.8, (46, 55), (0.75, 0.92), (0.85, 0.97)),
    (0.2, (58, 72), (0.7, 0.85), (0.75, 0.9)),
  ),  # not yet ripe
  'orange': ((1.0, (22, 34), (0.85, 0.97), (0.85, 1.0)),),
  'grapes': (
    (0.6, (285, 318), (0.45, 0.7), (0.32, 0.55)),  # purple
    (0.4, (72, 95), (0.45, 0.65), (0.6, 0.8)),
  ),  # green
  'pear': ((1.0, (58, 85), (0.5, 0.75), (0.7, 0.9)),),
  'leaf': ((1.0, (95, 125), (0.55, 0.8), (0.38, 0.6)),),
  'stem': ((1.0, (20, 35), (0.5, 0.7), (0.25, 0.4)),),
}


Params = dict[str, np.ndarray]  # slot name -> one value per image, [n]
_Layer = tuple[np.ndarray, np.ndarray]  # coverage [n, S, S], colour [n, S|1, S|1, 3]


def cos_sin(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  # Scalar libm per value, not np.cos: numpy's SIMD and scalar paths may differ in the
  # last bit, and an image must not depend on where it sits in a batch.
  cos = np.array([math.cos(t) for t in theta.tolist()], dtype=np.float64)
  sin = np.array([math.sin(t) for t in theta.tolist()], dtype=np.float64)
  return cos, sin


def col(x) -> np.ndarray:
  """Per-image values [n] as float32 [n, 1, 1], to broadcast against pixels [n, S, S]."""
  return np.asarray(x, np.float32)[:, None, None]


def lerp(lo: float, hi: float, t: np.ndarray) -> np.ndarray:
  return lo + (hi - lo) * t


def hsv_to_rgb(hue_deg: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
  """[n] HSV -> [n, 3] RGB in [0, 1]."""
  h = np.mod(hue_deg, 360.0) / 60.0
  channels = []
  for n in (5.0, 3.0, 1.0):
    k = np.mod(n + h, 6.0)
    channels.append(v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))
  return np.stack(channels, axis=-1)


def _colour(
  kind: str, p: Params, pick: str = 'variant', hue: str = 'hue', sat: str = 'sat', val: str = 'val'
) -> np.ndarray:
  """[n, 1, 1, 3] float32 colour drawn from `_COLOURS[kind]` with the given slots."""
  options = _COLOURS[kind]
  edges = np.cumsum([o[0] for o in options])
  choice = np.minimum(np.searchsorted(edges, p[pick], side='right'), len(options) - 1)
  ranges = np.array([o[1] + o[2] + o[3] for o in options], dtype=np.float64)[choice]
  rgb = hsv_to_rgb(
    lerp(ranges[:, 0], ranges[:, 1], p[hue]),
    lerp(ranges[:, 2], ranges[:, 3], p[sat]),
    lerp(ranges[:, 4], ranges[:, 5], p[val]),
  )
  return rgb.astype(np.float32)[:, None, None, :]


# ------------------------------------------------------------------ distance fields


def _circle(u, v, cx, cy, r):
  return np.sqrt((u - cx) ** 2 + (v - cy) ** 2) - r


def _smin(a, b, k):
  """Smooth union: blends two shapes over a band of width k (a pear's waist)."""
  h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
  return b + (a - b) * h - k * h * (1.0 - h)


def _capsule(u, v, ax, ay, bx, by, r):
  """A segment from a to b with radius r: stems."""
  pu, pv, du, dv = u - ax, v - ay, bx - ax, by - ay
  h = np.clip((pu * du + pv * dv) / (du * du + dv * dv), 0.0, 1.0)
  return np.sqrt((pu - du * h) ** 2 + (pv - dv * h) ** 2) - r


def _ellipse(u, v, cx, cy, rx, ry, cos, sin):
  """Approximate distance to a rotated ellipse (accurate near its edge: leaves)."""
  du, dv = u - cx, v - cy
  qu, qv = (cos * du + sin * dv) / rx, (cos * dv - sin * du) / ry
  k0 = np.sqrt(qu * qu + qv * qv)
  k1 = np.sqrt(qu * qu / rx**2 + qv * qv / ry**2) + 1e-6
  return k0 * (k0 - 1.0) / k1


# ------------------------------------------------------------------ rendering


@dataclasses.dataclass
class Frame:
  """Pixel coordinates of a sub-batch in each fruit's own frame, and its lighting."""

  u: np.ndarray  # [n, S, S] fruit-local x (fruit radius ~1)
  v: np.ndarray  # [n, S, S] fruit-local y, pointing down
  to_px: np.ndarray  # [n, 1, 1] local units -> pixels
  light: tuple  # unit vector towards the light, local frame, each [n, 1, 1]
  half: tuple  # Blinn half vector between light and viewer
  noise: np.ndarray  # [n, S, S] standard normal texture

  def alpha(self, dist: np.ndarray) -> np.ndarray:
    """Coverage of each pixel by the shape: anti-aliasing over one pixel width."""
    return np.clip(0.5 - dist * self.to_px, 0.0, 1.0)

  def lighting(self, nx, ny, ambient=0.35, shine=0.4, sharpness=4):
    """Lambert + Blinn-Phong on a bulging surface with outward normal (nx, ny, nz)."""
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
    lx, ly, lz = self.light
    diffuse = np.maximum(nx * lx + ny * ly + nz * lz, 0.0)
    # The (0.7 + 0.3 nz) factor darkens the rim, where the surface turns away from us.
    lum = (ambient + (1.0 - ambient) * diffuse) * (0.7 + 0.3 * nz)
    hx, hy, hz = self.half
    spec = np.maximum(nx * hx + ny * hy + nz * hz, 0.0)
    for _ in range(sharpness):  # spec ** 2**sharpness by exact multiplies
      spec = spec * spec
    return lum, shine * spec


def _lit(base: np.ndarray, lum: np.ndarray, spec: np.ndarray) -> np.ndarray:
  return base * lum[..., None] + spec[..., None]


def _stem(fr: Frame, p: Params, top: float, length: float = 0.42, radius: float = 0.06) -> _Layer:
  tip_u = col(0.06 + lerp(-0.2, 0.2, p['stem_bend']))
  dist = _capsule(fr.u, fr.v, 0.0, top, tip_u, top - length, radius)
  return fr.alpha(dist), _colour('stem', p, hue='hue2')


def _leaf(fr: Frame, p: Params, attach_v: float, prob: float) -> _Layer:
  """A leaf by the stem, on a fraction `prob` of images, pointing up-left or up-right."""
  side = np.where(p['leaf_ang'] < 0.5, -1.0, 1.0)
  ang = lerp(-1.2, -0.2, np.mod(p['leaf_ang'] * 2.0, 1.0))
  cos, sin = cos_sin(ang)
  cos = col(cos * side)
  sin = col(sin)
  dist = _ellipse(fr.u, fr.v, 0.04 + 0.27 * cos, attach_v + 0.27 * sin, 0.28, 0.11, cos, sin)
  present = col(p['leaf'] < prob)
  lum = 0.75 + 0.25 * fr.light[2]
  return fr.alpha(dist) * present, _colour('leaf', p, hue='leaf_hue') * lum[..., None]


def _two_tone(
  fr: Frame, p: Params, base: np.ndarray, other: np.ndarray, amount: np.ndarray
) -> np.ndarray:
  """Blends towards a second colour across the fruit (an apple's blush)."""
  cos, sin = cos_sin(p['tone_dir'] * 2 * np.pi)
  along = fr.u * col(cos) + fr.v * col(sin)
  w = np.clip(0.5 + 0.8 * along, 0.0, 1.0) * amount
  return base + (other - base) * w[..., None]


def apple(fr: Frame, p: Params, blue: bool = False) -> list[_Layer]:
  u, v = fr.u, fr.v * col(lerp(0.9, 1.1, p['aspect']))
  lobes = np.minimum(_circle(u, v, -0.3, -0.05, 0.68), _circle(u, v, 0.3, -0.05, 0.68))
  body = _smin(lobes, _circle(u, v, 0.0, 0.25, 0.6), 0.3)
  base = _colour('blue_apple' if blue else 'apple', p)
  shifted = dict(p, hue=np.mod(p['hue'] + lerp(-0.3, 0.3, p['hue2']), 1.0), val=p['val'] * 0.8)
  other = _colour('blue_apple' if blue else 'apple', shifted)
  colour = _two_tone(fr, p, base, other, col(lerp(0.0, 0.8, p['tone'])))
  lum, spec = fr.lighting(u / 0.95, (v - 0.05) / 0.95, shine=0.5, sharpness=4)
  # The stem sits in a shadowed hollow.
  hollow = np.clip(1.0 - np.sqrt(u * u + (v + 0.6) ** 2) / 0.3, 0.0, 1.0)
  lum = lum * (1.0 - 0.45 * hollow * hollow)
  return [
    _stem(fr, p, top=-0.55),
    (fr.alpha(body), _lit(colour, lum, spec)),
    _leaf(fr, p, attach_v=-0.78, prob=0.5),
  ]


def _banana(fr: Frame, p: Params) -> list[_Layer]:
  # A thick arc whose ends turn up, tapering to rounded brown tips.
  ra = col(lerp(1.05, 1.6, p['curve']))
  sin_a = np.minimum(0.95 / ra, 0.97)  # half-length ~0.95 at any curvature
  cos_a = np.sqrt(1.0 - sin_a * sin_a)
  width = col(lerp(0.26, 0.34, p['aspect']))
  cy = -ra * (1.0 + cos_a) / 2.0  # centres the arc vertically
  px, py = np.abs(fr.u), fr.v - cy
  r = np.sqrt(px * px + py * py) + 1e-6
  along = np.clip(px / (ra * sin_a), 0.0, 1.0)
  rb = width * (1.0 - 0.55 * along * along)
  on_arc = px * cos_a <= py * sin_a
  tip = np.sqrt((px - ra * sin_a) ** 2 + (py - ra * cos_a) ** 2)
  dist = np.where(on_arc, np.abs(r - ra), tip) - rb
  across = np.clip((r - ra) / rb, -1.0, 1.0)
  lum, spec = fr.lighting(across * fr.u / r, across * py / r, shine=0.3, sharpness=3)
  colour = _colour('banana', p)
  brown = np.float32([0.33, 0.22, 0.08])
  ends = np.clip((along - 0.82) / 0.12, 0.0, 1.0)[..., None]
  return [(fr.alpha(dist), _lit(colour + (brown - colour) * ends, lum, spec))]


def _orange(fr: Frame, p: Params) -> list[_Layer]:
  u, v = fr.u, fr.v * col(lerp(0.94, 1.06, p['aspect']))
  body = _circle(u, v, 0.0, 0.0, 0.8)
  lum, spec = fr.lighting(u / 0.8, v / 0.8, ambient=0.4, shine=0.22, sharpness=3)
  lum = lum * (1.0 + 0.05 * fr.noise)  # dimpled peel
  # The stem scar, somewhere on the visible face.
  su = col(lerp(-0.3, 0.3, p['detail_x']))
  sv = col(lerp(-0.45, 0.0, p['detail_y']))
  scar = _circle(u, v, su, sv, 0.075)
  scar_colour = np.float32([0.35, 0.4, 0.12]) * lum[..., None]
  return [
    (fr.alpha(body), _lit(_colour('orange', p), lum, spec)),
    (fr.alpha(np.maximum(scar, body)), scar_colour),
    _leaf(fr, p, attach_v=-0.72, prob=0.25),
  ]


def _grapes(fr: Frame, p: Params) -> list[_Layer]:
  layers = [_stem(fr, p, top=-0.5, length=0.5, radius=0.055)]
  colour = _colour('grapes', p)
  # Composite the grapes one by one into scalar fields, colour once at the end.
  cover = np.zeros_like(fr.u)
  lum_acc = np.zeros_like(fr.u)
  spec_acc = np.zeros_like(fr.u)
  for k, (gx, gy) in enumerate(GRAPES):
    jx, jy, extra = (p[f'g{k}_{j}'] for j in range(GRAPE_SLOTS))
    cx = col(gx + lerp(-0.07, 0.07, jx))
    cy = col(gy + lerp(-0.06, 0.06, jy))
    r = 0.27
    # Corner grapes are missing from some bunches.
    present = ~((k in (0, 3, 9)) & (extra < 0.25))
    a = fr.alpha(_circle(fr.u, fr.v, cx, cy, r)) * col(present)
    lum, spec = fr.lighting((fr.u - cx) / r, (fr.v - cy) / r, ambient=0.3, shine=0.55, sharpness=4)
    lum = lum * col(lerp(0.85, 1.1, extra))
    cover = cover + (1.0 - cover) * a
    lum_acc = lum_acc + (lum - lum_acc) * a
    spec_acc = spec_acc + (spec - spec_acc) * a
  layers.append((cover, _lit(colour, lum_acc, spec_acc)))
  return layers


def _pear(fr: Frame, p: Params) -> list[_Layer]:
  u, v = fr.u, fr.v
  w = col(lerp(0.9, 1.1, p['aspect']))
  top_r, bottom_r = 0.36 * w, 0.6 * w
  body = _smin(_circle(u, v, 0.0, -0.48, top_r), _circle(u, v, 0.0, 0.22, bottom_r), 0.4)
  # Normal: from the top sphere near the neck, from the bottom sphere below the waist.
  t = np.clip((v + 0.45) / 0.6, 0.0, 1.0)
  nx = u / (top_r + 0.12) * (1.0 - t) + u / bottom_r * t
  ny = (v + 0.48) / (top_r + 0.12) * (1.0 - t) + (v - 0.22) / bottom_r * t
  lum, spec = fr.lighting(nx, ny, ambient=0.38, shine=0.2, sharpness=3)
  lum = lum * (1.0 - 0.12 * np.clip(fr.noise - 1.0, 0.0, 2.0))  # russet speckles
  base = _colour('pear', p)
  blush = hsv_to_rgb(
    lerp(5, 20, p['hue2']), np.full_like(p['hue2'], 0.65), lerp(0.65, 0.8, p['val'])
  ).astype(np.float32)[:, None, None, :]
  amount = col(np.where(p['tone'] < 0.35, 0.7, 0.0))
  colour = _two_tone(fr, p, base, blush, amount)
  return [
    _stem(fr, p, top=-0.78, length=0.32),
    (fr.alpha(body), _lit(colour, lum, spec)),
    _leaf(fr, p, attach_v=-0.95, prob=0.3),
  ]


RENDERERS = (apple, _banana, _orange, _grapes, _pear)  # indexed by label
# A soft ellipse under each fruit (centre u, v and radii, local units) casts its shadow.
SHADOW_BLOB = (
  (0.0, 0.1, 0.85, 0.85),
  (0.0, 0.0, 0.95, 0.4),
  (0.0, 0.0, 0.8, 0.8),
  (0.0, 0.0, 0.85, 0.85),
  (0.0, 0.1, 0.65, 0.8),
)
