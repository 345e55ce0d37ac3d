"""`load(workdir)`: a trained experiment back as (config, model, params)."""

from __future__ import annotations

import os

import jax
import numpy as np

from genjax import tasks
from genjax.data import datasets
from genjax.train import checkpoints, parallel, state as state_lib, workdir as workdir_lib


def image_shape(config) -> tuple[int, int, int]:
  if config.data.name == 'fruits':
    size = config.data.get('image_size', 32)
    return (size, size, 3)
  if config.data.name in datasets.DATASETS:
    return (28, 28, 1)
  raise ValueError(f'Unknown data.name {config.data.name!r} in the saved config.')


def is_text(config) -> bool:
  return config.data.name in datasets.TEXT_DATASETS


def data_spec(config, workdir: str):
  """What `tasks.build` needs besides the config: the image shape, or the tokenizer
  saved with a text experiment (so sampling and evaluation need nothing else)."""
  if is_text(config):
    from genjax.data import tokenizers  # pylint: disable=import-outside-toplevel
    return tokenizers.load_tokenizer(os.path.join(workdir, 'tokenizer'))
  return image_shape(config)


def _example(config, spec) -> dict:
  """A one-row batch of the right shapes and dtypes, for tracing `init`."""
  if is_text(config):
    return {'tokens': np.zeros((1, config.data.block_size + 1), np.int32),
            'index': np.zeros((1,), np.int32)}
  example = {'image': np.zeros((1, *spec), np.uint8), 'label': np.zeros((1,), np.int32),
             'index': np.zeros((1,), np.int32)}
  if config.data.get('clusters', 0):
    example['cluster'] = np.zeros((1,), np.int32)
  return example


def abstract_state(task, config, spec) -> state_lib.TrainState:
  """Shapes, dtypes and (single-device) shardings of the state, computed without FLOPs."""
  tx = task.make_optimizer(config)
  example = _example(config, spec)

  def create(rng):
    params, extra = task.init(rng, example)
    return state_lib.create(params, tx, rng, extra)

  shapes = jax.eval_shape(create, jax.random.PRNGKey(0))
  sharding = parallel.replicated(parallel.make_mesh(jax.local_devices()[:1]))
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def load_state(workdir: str, step: int | None = None):
  """(config, task, TrainState) restored from `workdir` (latest step by default)."""
  config = workdir_lib.read_config(workdir)
  spec = data_spec(config, workdir)
  task = tasks.build(config, spec)
  like = abstract_state(task, config, spec)
  ckpt = checkpoints.Checkpointer(os.path.join(workdir, 'checkpoints'), async_save=False)
  try:
    if step is None:
      restored = ckpt.restore_latest(like)
      if restored is None:
        raise FileNotFoundError(f'No checkpoint under {ckpt.directory}: train first with '
                                f'`python -m launch.main ... --workdir={workdir}`.')
    else:
      if step not in ckpt.steps():
        raise FileNotFoundError(f'No checkpoint for step {step} in {ckpt.directory}; '
                                f'available: {ckpt.steps()}.')
      restored = ckpt.restore(step, like)
  finally:
    ckpt.close()
  state, _ = restored
  return config, task, state


def load(workdir: str, step: int | None = None):
  """(config, model, params): the model is an ordinary flax Module, params its variables."""
  config, task, state = load_state(workdir, step)
  return config, task.model, task.inference_variables(state)
