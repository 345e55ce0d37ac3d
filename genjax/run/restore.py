"""Trained runs back from their workdirs (genjax.api re-exports the public part).

A workdir holds all that is needed: config.json, the DataSpec (data_spec.json, with the
tokenizers it names) and Orbax checkpoints. Nothing here knows a family or a dataset.
`RUNS` is the loader the loop and the entry points hand to `tasks.build`, for families
that use another trained run (a GAN's evaluation classifier).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import ml_collections

from genjax import tasks
from genjax.data.spec import DataSpec, example_batch
from genjax.run import checkpoints, workdir as workdir_lib
from genjax.step import parallel, state as state_lib, train_step


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The run's config, with fields added since it was written at their defaults."""
  return tasks.complete(workdir_lib.read_config(workdir))


def abstract_state(task, config, spec: DataSpec) -> state_lib.TrainState:
  """Shapes, dtypes and (single-device) shardings of the state, computed without FLOPs."""
  tx = task.make_optimizer(config)
  example = example_batch(spec)
  shapes = jax.eval_shape(
    lambda rng: train_step.initial_state(task, config, tx, rng, example), jax.random.PRNGKey(0)
  )
  sharding = parallel.replicated(parallel.make_mesh(jax.local_devices()[:1]))
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def load_state(workdir: str, step: int | None = None, config=None):
  """(config, task, TrainState) restored from `workdir` (latest step by default).

  ``config``: the run's config with changes that leave the state's shapes alone (how to
  sample, evaluate); default the run's own, read from the workdir.
  """
  config = read_config(workdir) if config is None else config
  ckpt = checkpoints.Checkpointer(os.path.join(workdir, 'checkpoints'), async_save=False)
  try:
    if not ckpt.steps():
      raise FileNotFoundError(
        f'No checkpoint under {ckpt.directory}: train first with '
        f'`python -m launch.main ... --workdir={workdir}`.'
      )
    if step is not None and step not in ckpt.steps():
      raise FileNotFoundError(
        f'No checkpoint for step {step} in {ckpt.directory}; available: {ckpt.steps()}.'
      )
    spec = DataSpec.load(workdir)
    task = tasks.build(config, spec, RUNS)
    like = abstract_state(task, config, spec)
    state, _ = ckpt.restore_latest(like) if step is None else ckpt.restore(step, like)
  finally:
    ckpt.close()
  return config, task, state


def load_averaged_state(workdir: str, last: int, config=None):
  """(config, task, TrainState) with the parameters (and their EMA, if kept) averaged over
  the last `last` checkpoints, on the host; everything else is the latest checkpoint's.

  Checkpoint averaging (Vaswani et al. 2017; Wu et al. 2021 average the last 10): the
  weights of nearby steps sit around the same basin, and their mean often scores better
  than any one of them.
  """
  ckpt = checkpoints.Checkpointer(os.path.join(workdir, 'checkpoints'), async_save=False)
  try:
    steps = ckpt.steps()
  finally:
    ckpt.close()
  if last < 1 or len(steps) < last:
    raise FileNotFoundError(
      f'Averaging the last {last} checkpoints needs {last}; {workdir} keeps {len(steps)} '
      f'(steps {steps}). Pass a smaller number, or train with a larger '
      '--config.train.keep_checkpoints.'
    )
  states = [load_state(workdir, step, config) for step in steps[-last:]]
  config, task, latest = states[-1]
  mean = lambda *leaves: sum(jax.device_get(x) for x in leaves) / len(leaves)
  params = jax.tree.map(mean, *(s.params for _, _, s in states))
  extra = dict(latest.extra)
  if 'ema' in extra:
    extra['ema'] = jax.tree.map(mean, *(s.extra['ema'] for _, _, s in states))
  return config, task, latest.replace(params=params, extra=extra)


def load(workdir: str, step: int | None = None):
  """(config, model, variables): the model is an ordinary flax Module, `variables` what
  its `apply` takes (the EMA weights when the run kept them)."""
  config, task, state = load_state(workdir, step)
  return config, task.model, task.inference_variables(state)


@dataclasses.dataclass
class Trained:
  """A trained run, as a family that uses another run sees it."""

  config: ml_collections.ConfigDict
  spec: DataSpec
  task: Any
  state: state_lib.TrainState

  @property
  def model(self):
    return self.task.model

  @property
  def variables(self):
    return self.task.inference_variables(self.state)


class _Runs:
  """The loader `tasks.build` hands to families that need another trained run."""

  def config(self, workdir: str) -> ml_collections.ConfigDict:
    return read_config(workdir)

  def load(self, workdir: str, step: int | None = None) -> Trained:
    config, task, state = load_state(workdir, step)
    return Trained(config, DataSpec.load(workdir), task, state)


RUNS = _Runs()
