"""Importance-sampled log-likelihood of a VAE (Burda, Grosse & Salakhutdinov, 2015).

    log p(x) ~= log (1/k) sum_j p(x, z_j) / q(z_j | x),   z_j ~ q(z | x)

is a lower bound in expectation that tightens as k grows; k = 5000 is the
usual MNIST test number, k = 1000 a cheaper one. The k samples are drawn in
chunks inside one jitted function so memory stays at one chunk, and the
per-chunk logsumexps are combined with a running logaddexp, which is exactly
the logsumexp over all k.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

# log_weight_fn(params, x_batch [B, ...], rng, num_chunk) -> [B, num_chunk]
#   log p(x, z_j) - log q(z_j | x), z_j ~ q(z | x) drawn with `rng`.
LogWeightFn = Callable[[Any, jax.Array, jax.Array, int], jax.Array]


def iwae_bound(log_weights: jax.Array, axis: int = -1) -> jax.Array:
  """log (1/k) sum_j exp(log_weights_j) along `axis`, k = that axis' size; stable."""
  k = log_weights.shape[axis]
  return jax.nn.logsumexp(log_weights, axis=axis) - math.log(k)


def chunk_rng(
  rng: jax.Array, batch_index: int | jax.Array, chunk_index: int | jax.Array
) -> jax.Array:
  """The key that chunk `chunk_index` of batch `batch_index` samples with.

  Public so that tests and callers can reproduce the estimator's samples.
  """
  return jax.random.fold_in(jax.random.fold_in(rng, batch_index), chunk_index)


@functools.partial(jax.jit, static_argnames=('log_weight_fn', 'num_samples', 'chunk_size'))
def _batch_log_likelihood(
  log_weight_fn: LogWeightFn,
  params: Any,
  x: jax.Array,
  rng: jax.Array,
  batch_index: jax.Array,
  *,
  num_samples: int,
  chunk_size: int,
) -> jax.Array:
  """[B] IWAE estimates for one batch; batch_index is traced, so one compile serves all batches."""
  num_full, rem = divmod(num_samples, chunk_size)
  batch = x.shape[0]
  # float64 when jax_enable_x64 is on, else float32.
  dtype = jax.dtypes.canonicalize_dtype(jnp.float64)

  def chunk_lse(chunk_index, size):
    log_w = log_weight_fn(params, x, chunk_rng(rng, batch_index, chunk_index), size)
    if log_w.shape != (batch, size):
      raise ValueError(
        f'log_weight_fn must return [batch, num_chunk] = {(batch, size)}, got {log_w.shape}.'
      )
    return jax.nn.logsumexp(log_w.astype(dtype), axis=1)

  def body(acc, chunk_index):
    return jnp.logaddexp(acc, chunk_lse(chunk_index, chunk_size)), None

  acc = jnp.full((batch,), -jnp.inf, dtype=dtype)
  acc, _ = jax.lax.scan(body, acc, jnp.arange(num_full))
  if rem:  # the last, shorter chunk: a static shape, so still one compile
    acc = jnp.logaddexp(acc, chunk_lse(num_full, rem))
  return acc - math.log(num_samples)


def estimate_log_likelihood(
  log_weight_fn: LogWeightFn,
  params: Any,
  images: np.ndarray,
  rng: jax.Array,
  num_samples: int = 1000,
  batch_size: int = 100,
  chunk_size: int = 100,
) -> np.ndarray:
  """Per-image IWAE estimates of log p(x) (nats), float64 numpy [N].

  Args:
    log_weight_fn: (params, x_batch, rng, num_chunk) -> [B, num_chunk] log importance
      weights. Must treat examples independently (no batch statistics): the last
      batch is padded by repeating its final image and the padding is dropped.
      It is a static jit argument: pass the same function object across calls
      to reuse the compiled code.
    params: the model variables, passed through to log_weight_fn.
    images: [N, ...] test images, on the scale the model was trained on.
    rng: PRNG key; batch b, chunk c samples with chunk_rng(rng, b, c).
    num_samples: k, importance samples per image.
    batch_size: images per device call.
    chunk_size: samples drawn at once; memory is ~ batch_size * chunk_size samples.

  Returns:
    [N] float64 log p(x) estimates. Their mean is the test log-likelihood;
    -mean is the NLL usually reported.
  """
  if num_samples < 1 or batch_size < 1 or chunk_size < 1:
    raise ValueError(
      'num_samples, batch_size and chunk_size must all be >= 1, got '
      f'{num_samples}, {batch_size}, {chunk_size}.'
    )
  images = np.asarray(images)
  n = images.shape[0]
  if n == 0:
    return np.zeros((0,), dtype=np.float64)
  batch_size = min(batch_size, n)  # no point padding a small set up to a big batch
  chunk_size = min(chunk_size, num_samples)
  out = np.empty((n,), dtype=np.float64)
  for b, start in enumerate(range(0, n, batch_size)):
    x = images[start : start + batch_size]
    valid = x.shape[0]
    if valid < batch_size:  # same shape as every other batch: no recompile
      pad = [(0, batch_size - valid)] + [(0, 0)] * (x.ndim - 1)
      x = np.pad(x, pad, mode='edge')
    values = _batch_log_likelihood(
      log_weight_fn,
      params,
      jnp.asarray(x),
      rng,
      jnp.asarray(b, dtype=jnp.uint32),
      num_samples=num_samples,
      chunk_size=chunk_size,
    )
    out[start : start + valid] = np.asarray(values, dtype=np.float64)[:valid]
  return out
