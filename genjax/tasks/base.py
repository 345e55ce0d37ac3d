"""What the model-agnostic loop needs from a family: a bundle of pure functions.

The loop never imports a model; it asks `genjax.tasks.build(config)` for a `Task` and
calls these. Each function is pure: parameters, a batch and a PRNG key in, arrays out.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import numpy as np
import optax

from genjax.train import optim, parallel

Batch = Mapping[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Task:
  """A family's functions for one config.

  init(rng, batch) -> (params, extra)      parameters and non-trained collections
  make_step(tx) -> step_fn                 step_fn(state, batch, *, axis_name)
  eval_metrics(params, batch, rng) -> {name: [B] per-example values}
      what the loop averages over eval.num_examples test examples every eval_every steps
  evaluate(params, data, rng) -> {name: float}   the full launch.evaluate report
  periodic_evaluate(params, data, rng) -> {name: float}
      replaces eval_metrics in training where per-example means do not fit (a GAN's
      FID needs generated samples and a classifier)
  diagnose(step, train_means) -> warning text or None
      called at each log step: failure modes the loss alone does not show
  views: {mode: fn(params, test_arrays, rng, num) -> [rows, cols, H, W, C] in [0, 1]}
      the pictures launch.sample draws; `views[default_view]` is drawn during training
      (a text family's view returns a str instead, written as samples/step_N.txt)
  """
  name: str
  model: Any
  init: Callable[[jax.Array, Batch], tuple[Any, Any]]
  loss: Callable[[Any, Batch, jax.Array], tuple[jax.Array, dict]] | None
  eval_metrics: Callable[[Any, Batch, jax.Array], dict] | None
  evaluate: Callable[..., dict]
  views: Mapping[str, Callable[..., np.ndarray]]
  default_view: str
  # Families with several networks override these three (a GAN: two optimizers keyed
  # like its params, an alternating step, EMA generator weights for inference).
  make_step: Callable[[Any], parallel.StepFn] | None = None
  optimizer: Callable[[Any], Any] | None = None
  export: Callable[[Any], Any] | None = None
  periodic_evaluate: Callable[..., dict] | None = None
  diagnose: Callable[[int, dict], str | None] | None = None
  # Families that generate text: a `lm_sampling.TextSampler` (prompt in, text out).
  sampler: Any = None

  def train_step(self, tx) -> parallel.StepFn:
    if self.make_step is not None:
      return self.make_step(tx)
    return parallel.gradient_step(self.loss, tx)

  def make_optimizer(self, config) -> optax.GradientTransformation | dict:
    """One optax transformation, or a dict of them keyed like the params' top level."""
    if self.optimizer is not None:
      return self.optimizer(config)
    return optim.make_optimizer(config.optim, config.train.steps)

  def inference_variables(self, state) -> Any:
    """What views, evaluate and genjax.load use: the params, unless the family says."""
    return state.params if self.export is None else self.export(state)


def per_example_keys(rng: jax.Array, index: jax.Array) -> jax.Array:
  """One key per example from its position in the global batch.

  Noise drawn from these keys is the same whichever device holds the example, which is
  what makes 'pmap', 'jit' and one device agree on stochastic losses.
  """
  return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(rng, index)


def float_images(arrays: Mapping[str, np.ndarray], n: int | None = None) -> np.ndarray:
  """Host-side `to_float` of the first `n` (default all) images of a split."""
  x = arrays['image'] if n is None else arrays['image'][:n]
  return np.asarray(x, np.float32) / 255.0


def to_float(images: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [0, 1]; data travels to the device as bytes (4x less)."""
  return images.astype('float32') / 255.0
