"""The step every run compiles, for any family: its update, plus the generic features.

  initial_state(task, config, tx, rng, example)   parameters, optimizer state, EMA
  train_step(task, config, tx) -> step_fn         step_fn(state, batch, *, axis_name)

Features every family gets from the config, under 'jit' and 'pmap', several steps per
call and vectorized sweeps alike (they live inside the one pure step):

- `train.grad_accum_steps = N`: the batch a device sees is cut into N micro-batches
  whose gradients are summed in a `lax.scan` before one optimizer update. The loss is a
  mean over examples and each example draws its noise from its own key, so the update
  is that of one step of the whole batch, to float rounding, in about 1/N the
  activation memory.
- `train.ema_decay = d > 0`: `extra['ema']` keeps an exponential moving average of the
  parameters, updated after every step with decay min(d, (1 + t) / (10 + t)) at step t:
  the warm-up keeps the early average from being mostly the random initialisation.
  Sampling, evaluation and genjax.load use it (`Task.inference_variables`).

A family with its own step (`Task.make_step`, a GAN's alternating update) gets EMA too;
gradient accumulation is the generic step's, so such a family refuses it.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from genjax.config import ConfigError
from genjax.step import parallel, state as state_lib


def initial_state(
  task, config, tx, rng: jax.Array, example: dict, boxed: bool = False
) -> state_lib.TrainState:
  """The state before step 0: init from the first key, the train key from the second.

  Weights the model annotates with logical axis names (`nn.with_logical_partitioning`)
  come out of their boxes, so the state holds plain arrays; `boxed` keeps the boxes (for
  `nn.get_partition_spec` of the whole state, under `jax.eval_shape`: the optimizer's
  moments carry their parameter's names)."""
  init_rng, train_rng = jax.random.split(rng)
  params, extra = task.init(init_rng, example)
  if not boxed:
    params, extra = nn.meta.unbox((params, extra))
  if config.train.ema_decay > 0:
    extra = dict(extra, ema=params)
  return state_lib.create(params, tx, train_rng, extra)


def ema_decay_at(step: jax.Array, decay) -> jax.Array:
  """The EMA's decay after `step` updates: warmed up, then `decay`."""
  t = step.astype(jnp.float32)
  return jnp.minimum(decay, (1.0 + t) / (10.0 + t))


def with_ema(step_fn: parallel.StepFn, decay) -> parallel.StepFn:
  """`step_fn` followed by the EMA update of `extra['ema']` towards the new params."""

  def step(state: state_lib.TrainState, batch: dict, *, axis_name: str | None):
    new_state, metrics = step_fn(state, batch, axis_name=axis_name)
    d = ema_decay_at(state.step, decay)
    ema = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, state.extra['ema'], new_state.params)
    return new_state.replace(extra=dict(new_state.extra, ema=ema)), metrics

  return step


def gradient_step(
  loss_fn: parallel.LossFn, tx: optax.GradientTransformation, accum_steps: int = 1
) -> parallel.StepFn:
  """One optimizer update on `loss_fn`, its gradient taken over `accum_steps` micro-batches.

  `loss_fn(params, batch, rng) -> (mean loss over the batch it sees, metrics)`. Equal
  micro-batches (and equal per-device batches) make the mean of the means the mean over
  the whole batch, for the loss, its gradient and the metrics.
  """
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def gradients(params, batch: dict, rng):
    """(gradients, metrics with the loss) of the batch, averaged over its micro-batches."""

    def one(micro_batch):
      (loss, metrics), grads = grad_fn(params, micro_batch, rng)
      return grads, dict(metrics, loss=loss)

    if accum_steps == 1:
      return one(batch)
    rows = jax.tree.leaves(batch)[0].shape[0]
    micro = jax.tree.map(lambda x: x.reshape(accum_steps, rows // accum_steps, *x.shape[1:]), batch)
    first = jax.tree.map(lambda x: x[0], micro)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(one, first))
    total, _ = jax.lax.scan(lambda t, m: (jax.tree.map(jnp.add, t, one(m)), None), zeros, micro)
    return jax.tree.map(lambda x: x / accum_steps, total)

  def step(state: state_lib.TrainState, batch: dict, *, axis_name: str | None):
    rng = state_lib.step_key(state)
    grads, metrics = gradients(state.params, batch, rng)
    grads, metrics = parallel.mean_over_devices((grads, metrics), axis_name)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics['grad_norm'] = optax.tree.norm(grads)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    return new_state, metrics

  return step


def check_accumulation(config, local_batch: int) -> None:
  """A batch that does not cut into grad_accum_steps equal micro-batches is an error."""
  n = config.train.grad_accum_steps
  if local_batch % n:
    raise ConfigError(
      f'config.train.grad_accum_steps={n} does not divide the {local_batch} examples each '
      f'device sees (data.batch_size / devices); use a divisor of {local_batch}.'
    )


def train_step(task, config, tx) -> parallel.StepFn:
  """The family's step (its `make_step`, else the gradient step of its loss), with EMA."""
  accum = config.train.grad_accum_steps
  if task.make_step is not None:
    if accum > 1:
      raise ConfigError(
        f'config.train.grad_accum_steps={accum}: the {task.name} family '
        'brings its own step, which does not accumulate gradients; use 1.'
      )
    step: Any = task.make_step(tx)
  else:
    step = gradient_step(task.loss, tx, accum)
  if config.train.ema_decay > 0:
    step = with_ema(step, config.train.ema_decay)
  return step
