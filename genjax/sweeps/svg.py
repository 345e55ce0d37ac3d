"""A scatter plot as a small hand-written SVG: a metric against one swept field.

No plotting library: the file opens in any browser and renders in GitHub markdown.
Numeric fields get a linear or log x-axis; other values (strings, tuples, bools) one
column each, in the order first seen.
"""

from __future__ import annotations

import html
import math
from typing import Any, Sequence

WIDTH, HEIGHT = 520, 340
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 30, 60


def _fmt(value: float) -> str:
  return f'{value:.4g}'


def linear_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
  """Round-numbered ticks (steps of 1, 2 or 5 times a power of ten) covering [lo, hi]."""
  span = hi - lo
  step = 10 ** math.floor(math.log10(span / target))
  for multiple in (1, 2, 5, 10):
    if span / (step * multiple) <= target:
      step *= multiple
      break
  first = math.ceil(lo / step - 1e-9)
  return [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
  """Powers of ten in [lo, hi]; 1-2-5 steps too when the range spans under three decades."""
  low, high = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
  multiples = (1,) if high - low > 3 else (1, 2, 5)
  ticks = [m * 10.0**k for k in range(low, high + 1) for m in multiples]
  return [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]


def _padded(lo: float, hi: float, log: bool) -> tuple[float, float]:
  if log:
    lo, hi = math.log10(lo), math.log10(hi)
  if hi == lo:
    lo, hi = lo - (abs(lo) or 1) * 0.1, hi + (abs(hi) or 1) * 0.1
  pad = (hi - lo) * 0.06
  lo, hi = lo - pad, hi + pad
  return (10**lo, 10**hi) if log else (lo, hi)


def scatter(
  xs: Sequence[Any],
  ys: Sequence[float],
  *,
  x_label: str,
  y_label: str,
  title: str,
  highlight: int | None = None,
) -> str:
  """An SVG document: (xs[i], ys[i]) as dots, dot `highlight` (the best run) in red."""
  numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
  log_x = numeric and min(xs) > 0 and max(xs) / min(xs) > 10
  if numeric:
    x_lo, x_hi = _padded(min(xs), max(xs), log_x)
    x_ticks = log_ticks(x_lo, x_hi) if log_x else linear_ticks(x_lo, x_hi)
    x_tick_labels = [_fmt(t) for t in x_ticks]
    positions = [float(x) for x in xs]
  else:
    labels = list(dict.fromkeys(str(x) for x in xs))
    positions = [float(labels.index(str(x))) for x in xs]
    x_lo, x_hi = -0.5, len(labels) - 0.5
    x_ticks, x_tick_labels = [float(i) for i in range(len(labels))], labels
  y_lo, y_hi = _padded(min(ys), max(ys), False)
  y_ticks = linear_ticks(y_lo, y_hi)
  plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

  def px(x: float) -> float:
    if log_x:
      return LEFT + plot_w * (math.log10(x) - math.log10(x_lo)) / (
        math.log10(x_hi) - math.log10(x_lo)
      )
    return LEFT + plot_w * (x - x_lo) / (x_hi - x_lo)

  def py(y: float) -> float:
    return TOP + plot_h * (1 - (y - y_lo) / (y_hi - y_lo))

  esc = html.escape
  out = [
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
    f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
    f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="13">{esc(title)}</text>',
    f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>',
  ]
  for tick, label in zip(x_ticks, x_tick_labels):
    x = px(tick)
    out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" stroke="#ddd"/>')
    out.append(
      f'<text x="{x:.1f}" y="{TOP + plot_h + 15}" text-anchor="middle">{esc(label)}</text>'
    )
  for tick in y_ticks:
    y = py(tick)
    out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
    out.append(f'<text x="{LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
  scale = ' (log scale)' if log_x else ''
  out.append(
    f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 15}" text-anchor="middle">'
    f'{esc(x_label + scale)}</text>'
  )
  out.append(
    f'<text x="15" y="{TOP + plot_h / 2}" text-anchor="middle" '
    f'transform="rotate(-90 15 {TOP + plot_h / 2})">{esc(y_label)}</text>'
  )
  order = [i for i in range(len(xs)) if i != highlight] + (
    [highlight] if highlight is not None else []
  )
  for i in order:
    color = '#d62728' if i == highlight else '#1f77b4'
    out.append(
      f'<circle cx="{px(positions[i]):.1f}" cy="{py(ys[i]):.1f}" r="4" '
      f'fill="{color}" fill-opacity="0.8"><title>{esc(str(xs[i]))}: '
      f'{_fmt(ys[i])}</title></circle>'
    )
  out.append('</svg>')
  return '\n'.join(out) + '\n'
