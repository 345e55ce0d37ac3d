"""Optimizer and learning-rate schedule from `config.optim`."""

from __future__ import annotations

import jax
import ml_collections
import optax


def learning_rate_schedule(optim: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Linear warmup from 0 to the peak, then constant, cosine or linear decay."""
  peak = optim.learning_rate
  end = peak * optim.end_learning_rate_factor
  decay_steps = max(total_steps - optim.warmup_steps, 1)
  if optim.schedule == 'constant':
    decay = optax.constant_schedule(peak)
  elif optim.schedule == 'cosine':
    decay = optax.cosine_decay_schedule(peak, decay_steps, alpha=optim.end_learning_rate_factor)
  elif optim.schedule == 'linear':
    decay = optax.linear_schedule(peak, end, decay_steps)
  else:
    raise ValueError(f'Unknown optim.schedule {optim.schedule!r}.')
  if optim.warmup_steps == 0:
    return decay
  warmup = optax.linear_schedule(0.0, peak, optim.warmup_steps)
  return optax.join_schedules([warmup, decay], [optim.warmup_steps])


def _is_matrix(params):
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def decay_mask(optim: ml_collections.ConfigDict):
  """Which parameters weight decay applies to: all, or (`optim.decay_only_matrices`) the
  weight matrices and embeddings, not biases and normalisation scales (GPT-2/nanoGPT)."""
  return _is_matrix if optim.decay_only_matrices else None


def make_optimizer(
  optim: ml_collections.ConfigDict, total_steps: int
) -> optax.GradientTransformation:
  """Clipping (optional) followed by the named optimizer on the schedule."""
  lr = learning_rate_schedule(optim, total_steps)
  if optim.name == 'adam':
    tx = optax.adam(lr, b1=optim.b1, b2=optim.b2, eps=optim.eps)
  elif optim.name == 'adamw':
    tx = optax.adamw(
      lr,
      b1=optim.b1,
      b2=optim.b2,
      eps=optim.eps,
      weight_decay=optim.weight_decay,
      mask=decay_mask(optim),
    )
  elif optim.name == 'lamb':
    tx = optax.lamb(
      lr,
      b1=optim.b1,
      b2=optim.b2,
      eps=optim.eps,
      weight_decay=optim.weight_decay,
      mask=decay_mask(optim),
    )
  elif optim.name == 'sgd':
    tx = optax.sgd(lr, momentum=optim.b1 or None)
  else:
    raise ValueError(f'Unknown optim.name {optim.name!r}.')
  if optim.grad_clip_norm > 0:
    tx = optax.chain(optax.clip_by_global_norm(optim.grad_clip_norm), tx)
  return tx
