"""Output writers: metrics (metrics.jsonl + TensorBoard) and image grids (PNG)."""

from genjax.writers.images import make_grid, save_png, upscale
from genjax.writers.metrics import MetricWriter, read_metrics

__all__ = ['MetricWriter', 'read_metrics', 'make_grid', 'save_png', 'upscale']
