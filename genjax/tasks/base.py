"""What the model-agnostic loop needs from a family: a bundle of pure functions.

The loop never imports a model; it asks `genjax.tasks.build(config, spec)` for a `Task`
and calls these. Each function is pure: parameters, a batch and a PRNG key in, arrays out.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import numpy as np
import optax

from genjax.step import optim, parallel
from genjax.writers import outputs

Batch = Mapping[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class View:
  """Something a family draws: `draw(variables, arrays, rng, num, **options)` returns a
  `genjax.writers.outputs` kind (pictures, text).

  options: the keyword options `draw` takes beyond those four ('classes' for a
    conditional model; 'prompt', 'max_new_tokens', 'temperature', 'top_k', 'top_p',
    'num_samples', 'on_text' for a text model); `launch.sample` offers a flag only to
    the views that take it.
  needs_data: draws from test examples (`arrays`), so they must be loaded first.
  """

  draw: Callable[..., Any]
  options: tuple[str, ...] = ()
  needs_data: bool = False

  def __call__(self, variables, arrays, rng, num, **options):
    return self.draw(variables, arrays, rng, num, **options)


@dataclasses.dataclass(frozen=True)
class Task:
  """A family's functions for one config.

  init(rng, batch) -> (params, extra)      parameters and non-trained collections
  loss(params, batch, rng) -> (loss, metrics)   the mean loss of the batch it sees; the
      generic step differentiates it (with gradient accumulation and EMA, see
      genjax.step.train_step), unless the family brings its own `make_step`
  eval_metrics(params, batch, rng) -> {name: [B] per-example values}
      what the loop averages over eval.num_examples test examples every eval_every steps
  corpus_metrics(variables, data, rng) -> {name: float}
      metrics of all outputs together (FID of generated samples, BLEU of translations),
      computed with eval_metrics every eval_every steps, in the loop and in vectorized
      sweeps
  evaluate(variables, data, rng, eval_config) -> {name: value}   launch.evaluate's report
  diagnose(step, train_means) -> warning text or None
      called at each log step: failure modes the loss alone does not show
  views: {mode: View}; `views[default_view]` is drawn during training every sample_every
  conditioning: how many classes (or clusters, or codes) the views' `classes` option
      draws from; 0 when the family takes none
  head: the names of the parameter subtrees (under 'params') of the family's output head
      (a classifier's, a masked-token predictor's): what `config.init_from` leaves at its
      initialisation when the run it starts from has none (genjax.run.init_from)
  """

  name: str
  model: Any
  init: Callable[[jax.Array, Batch], tuple[Any, Any]]
  loss: Callable[[Any, Batch, jax.Array], tuple[jax.Array, dict]] | None
  eval_metrics: Callable[[Any, Batch, jax.Array], dict] | None
  evaluate: Callable[..., dict]
  views: Mapping[str, View]
  default_view: str
  corpus_metrics: Callable[..., dict] | None = None
  diagnose: Callable[[int, dict], str | None] | None = None
  conditioning: int = 0
  # Families with several networks override these three (a GAN: two optimizers keyed
  # like its params, an alternating step, its generator's variables for inference).
  make_step: Callable[[Any], parallel.StepFn] | None = None
  optimizer: Callable[[Any], Any] | None = None
  export: Callable[[Any, Any], Any] | None = None
  head: tuple[str, ...] = ()

  def make_optimizer(self, config) -> optax.GradientTransformation | dict:
    """One optax transformation, or a dict of them keyed like the params' top level."""
    if self.optimizer is not None:
      return self.optimizer(config)
    return optim.make_optimizer(config.optim, config.train.steps)

  def inference_variables(self, state) -> Any:
    """What views, evaluation and genjax.load use: the EMA of the parameters when the
    run keeps one (train.ema_decay), else the parameters; through `export` when the
    family keeps more than its inference model's variables."""
    params = state.extra.get('ema', state.params)
    return params if self.export is None else self.export(params, state)


def pictures(layout: Callable[..., np.ndarray]) -> Callable[..., outputs.Pictures]:
  """A view's draw from a function that lays pictures out as [rows, cols, H, W, C]."""
  return lambda *args, **options: outputs.Pictures(np.asarray(layout(*args, **options)))


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
