"""This machine's practical float32 matmul peak: what FLOP/s figures are measured against."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp


def matmul_peak(sizes=(512, 1024, 2048), repeats=5, dtype=jnp.float32) -> float:
  """Best FLOP/s of a jitted square matmul in `dtype`: the machine's practical peak."""
  best = 0.0
  for n in sizes:
    a = jnp.ones((n, n), dtype)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    for _ in range(repeats):
      start = time.perf_counter()
      f(a).block_until_ready()
      best = max(best, 2 * n**3 / (time.perf_counter() - start))
  return best
