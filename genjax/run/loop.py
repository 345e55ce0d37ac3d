"""`train_and_evaluate(config, workdir)`: the model-agnostic training loop.

The loop knows a `Task` (a family's pure functions), a mesh and a workdir; it never
knows which model it trains. Per step (or per call of `train.steps_per_call` steps) it
does no host work but fetching the next prefetched batch and dispatching the compiled
step: metrics are summed on the device and read back only at log, eval and checkpoint
steps.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from genjax import config as config_lib
from genjax import tasks
from genjax.data import datasets, pipeline
from genjax.data.spec import example_batch
from genjax.run import checkpoints, driver, init_from, preemption, restore, workdir as workdir_lib
from genjax.step import parallel, sharding, state as state_lib, train_step
from genjax.writers.metrics import MetricWriter

Hook = driver.Hook
DispatchLimiter = driver.DispatchLimiter  # for benchmarks that drive a step themselves
call_sizes = driver.call_sizes


class NonFiniteLossError(FloatingPointError):
  """Training produced NaN/inf; the last good checkpoint is kept."""


def init_state(task, config, tx, example: dict, mesh) -> state_lib.TrainState:
  """Initial state, created directly in its layout on the mesh (whole on every device, or
  split under 'fsdp'; compiled, no host copy)."""
  create = lambda rng, example: train_step.initial_state(task, config, tx, rng, example)
  rng = jax.random.PRNGKey(config.seed)
  return jax.jit(create, out_shardings=state_layout(task, config, tx, example, mesh))(rng, example)


def state_layout(task, config, tx, example: dict, mesh):
  """The state's NamedShardings on `mesh` (genjax.step.sharding), from its shapes and the
  logical axis names the model gives its weights; nothing is computed."""
  boxed = jax.eval_shape(
    lambda rng: train_step.initial_state(task, config, tx, rng, example, boxed=True),
    jax.random.PRNGKey(0),
  )
  return sharding.state_sharding(
    nn.meta.unbox(boxed),
    mesh,
    config.parallel.strategy,
    config.parallel.fsdp_min_size,
    logical=nn.get_partition_spec(boxed),
    rules=config.parallel.logical_axis_rules,
  )


def make_eval_fn(task, mesh):
  """Masked sums of the task's per-example metrics over one batch, compiled once."""

  @jax.jit
  def eval_batch(params, batch, rng):
    per_example = task.eval_metrics(params, batch, rng)
    mask = batch['mask'].astype(jnp.float32)
    return {k: jnp.sum(v * mask) for k, v in per_example.items()}, jnp.sum(mask)

  def evaluate(params, arrays: dict, batch_size: int, rng) -> dict[str, float]:
    totals, count = None, 0.0
    for i, batch in enumerate(
      pipeline.eval_batches(arrays, batch_size, parallel.batch_sharding(mesh))
    ):
      sums, n = eval_batch(params, batch, jax.random.fold_in(rng, i))
      totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
      count += n
    return {k: float(v) / float(count) for k, v in jax.device_get(totals).items()}

  return evaluate


def write_sample(
  task, variables, arrays: dict, rng, step: int, workdir: str, writer: MetricWriter, is_lead: bool
) -> None:
  """The default view at `step`: samples/step_N.png (pictures), .txt (text), ..."""
  drawn = task.views[task.default_view](variables, arrays, rng, 64)
  if is_lead:
    drawn.save(os.path.join(workdir, 'samples', f'step_{step:08d}'))
  drawn.log(writer, step, 'samples')


def evaluate_now(
  task, evaluate, variables, data, eval_subset: dict, batch_size: int, rng
) -> dict[str, float]:
  """The eval step's metrics: per-example means over the subset, and the family's
  corpus-level metrics of all its outputs; scalars only."""
  results = {}
  if task.eval_metrics is not None:
    results.update(evaluate(variables, eval_subset, batch_size, rng))
  if task.corpus_metrics is not None:
    results.update(task.corpus_metrics(variables, data, rng))
  return {k: v for k, v in results.items() if np.ndim(v) == 0}


def _progress_line(step: int, total: int, metrics: dict, steps_per_s: float) -> str:
  eta = (total - step) / steps_per_s if steps_per_s > 0 else float('inf')
  if math.isfinite(eta):
    minutes, seconds = divmod(int(eta), 60)
    eta_text = f'{minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}'  # hours may pass 24
  else:
    eta_text = '?'
  hidden = ('loss', 'steps_per_s', 'data_wait_fraction')
  shown = ' '.join(f'{k}={v:.4g}' for k, v in sorted(metrics.items()) if k not in hidden)
  return (
    f'step {step}/{total} loss={metrics["loss"]:.4f} {shown} | '
    f'{steps_per_s:.2f} steps/s, data wait {100 * metrics["data_wait_fraction"]:.1f}%, '
    f'ETA {eta_text}'
  )


class _Run:
  """One run, as `driver.drive` sees it: the state, its workdir, its writers."""

  points = None

  def __init__(
    self,
    task,
    config,
    data,
    state,
    step_fn,
    mesh,
    workdir: str,
    ckpt,
    writer,
    source_steps_per_epoch: int,
    is_lead: bool,
  ):
    self.task, self.config, self.data, self.state = task, config, data, state
    self.step_fn, self.workdir, self.ckpt, self.writer = step_fn, workdir, ckpt, writer
    self.steps_per_epoch, self.is_lead = source_steps_per_epoch, is_lead
    self.evaluator = make_eval_fn(task, mesh)
    self.eval_subset = {k: v[: config.eval.num_examples] for k, v in data.test.items()}
    self.eval_rng = jax.random.PRNGKey(config.seed + 1)  # same eval noise at every eval
    self.sample_rng = jax.random.PRNGKey(config.seed + 2)  # same latents: comparable over time
    self.last_saved = int(state.step)

  def step(self, batch) -> dict:
    self.state, metrics = self.step_fn(self.state, batch)
    return metrics

  def non_finite(self, done: int, first_bad) -> None:
    del done
    if int(first_bad) == driver.NO_BAD_STEP:
      return
    self.ckpt.wait()
    latest = self.ckpt.latest_step()
    kept = (
      f'The last good checkpoint (step {latest}) is kept in {self.ckpt.directory}.'
      if latest is not None
      else 'No checkpoint had been written yet.'
    )
    raise NonFiniteLossError(
      f'Loss became NaN/inf at step {int(first_bad)}; stopped. {kept} Lower '
      'optim.learning_rate or set optim.grad_clip_norm.'
    )

  def log(self, done: int, means: dict, steps_per_s: float, wait_fraction: float) -> None:
    means = dict(means, data_wait_fraction=wait_fraction, steps_per_s=steps_per_s)
    self.writer.write(done, 'train', means)
    logging.info(_progress_line(done, self.config.train.steps, means, steps_per_s))
    warning = self.task.diagnose(done, means) if self.task.diagnose is not None else None
    if warning:
      logging.warning('step %d: %s', done, warning)

  def evaluate(self, done: int) -> None:
    scalars = evaluate_now(
      self.task,
      self.evaluator,
      self.task.inference_variables(self.state),
      self.data,
      self.eval_subset,
      self.config.eval.batch_size,
      self.eval_rng,
    )
    if scalars:
      self.writer.write(done, 'test', scalars)
      logging.info(
        'test @ %d: %s', done, ' '.join(f'{k}={v:.4f}' for k, v in sorted(scalars.items()))
      )

  def sample(self, done: int) -> None:
    if self.task.views:
      write_sample(
        self.task,
        self.task.inference_variables(self.state),
        self.data.test,
        self.sample_rng,
        done,
        self.workdir,
        self.writer,
        self.is_lead,
      )

  def checkpoint(self, done: int) -> None:
    self.last_saved = done
    self.ckpt.save(
      done,
      self.state,
      {'step': done, 'epoch': done // self.steps_per_epoch, 'seed': self.config.seed},
    )

  def preempted(self, done: int, signal_name: str) -> None:
    if self.last_saved != done:
      self.checkpoint(done)
    logging.warning(
      'Stopping on %s at step %d; checkpoint saved. Run the same command to resume.',
      signal_name,
      done,
    )


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  allow_config_change: bool = False,
  hooks: Sequence[Hook] = (),
) -> state_lib.TrainState:
  """Trains (or resumes) `config` in `workdir`; returns the final state.

  `hooks` run after every step with (step, state); they are the extension point for
  research code (and how tests stop a run at a chosen step). With
  `train.steps_per_call` > 1 they run after every call, with its last step.
  """
  # Everything that can fail on user input fails here, before anything is written.
  for change in config_lib.fit_to_run(config):
    logging.warning(change)
  config_lib.validate(config)
  tasks.check_fields(config)
  workdir = os.path.abspath(workdir)
  mesh = parallel.mesh_of(config.parallel.mesh)
  parallel.check_batch_size(config.data.batch_size, mesh)
  train_step.check_accumulation(config, config.data.batch_size // mesh.shape[parallel.AXIS])
  workdir_lib.check_or_write_config(config, workdir, allow_config_change, write=False)
  if config.init_from:  # its tokenizers, before the data is encoded with them
    init_from.prepare(config.init_from, workdir)
  data = datasets.load(config.data, workdir=workdir)
  task = tasks.build(config, data.spec, restore.RUNS)
  tx = task.make_optimizer(config)
  step_fn = train_step.train_step(task, config, tx)  # a family's refusal comes before writing
  if config.init_from:  # parameters that do not fit: refused before anything is written
    init_from.check_fits(config, task, data.spec, workdir)

  is_lead = jax.process_index() == 0
  with contextlib.ExitStack() as held:
    if is_lead:  # one training process per workdir; the others of this run follow it
      held.enter_context(workdir_lib.training_lock(workdir))
      workdir_lib.check_or_write_config(config, workdir, allow_config_change, write=True)
      data.spec.save(workdir)
    return _train(config, workdir, data, task, tx, step_fn, mesh, is_lead, hooks)


def _train(
  config, workdir: str, data, task, tx, step_fn, mesh, is_lead: bool, hooks: Sequence[Hook]
) -> state_lib.TrainState:
  """The run itself, once the workdir is checked, locked and written."""
  ckpt = checkpoints.Checkpointer(
    os.path.join(workdir, 'checkpoints'), keep=config.train.keep_checkpoints
  )
  source = data.train_source(config.data.batch_size, config.seed)
  # The same example restore traces (genjax.run.restore): the state's shapes agree.
  state = init_state(task, config, tx, example_batch(data.spec, config.data.batch_size), mesh)
  restored = ckpt.restore_latest(state)
  if restored is not None:
    state, meta = restored
    logging.info('Resumed from step %d of %s.', meta['step'], ckpt.directory)
  elif config.init_from:
    state = init_from.initialize(state, config, task)
  start = int(state.step)

  # Several steps per call (a lax.scan) when train.steps_per_call > 1: one dispatch and
  # one host synchronisation per call instead of per step.
  multi_step = config.train.steps_per_call > 1
  step_fn = parallel.compile_step(
    step_fn,
    mesh,
    config.parallel.strategy,
    multi_step=multi_step,
    state_sharding=jax.tree.map(lambda x: x.sharding, state),  # as restored or created
  )
  if multi_step:
    calls = call_sizes(start, config.train)
    train_sharding = parallel.stacked_batch_sharding(mesh)
  else:
    calls = itertools.repeat(1, max(config.train.steps - start, 0))
    train_sharding = parallel.batch_sharding(mesh)
  writer = MetricWriter(workdir, enabled=is_lead)
  run = _Run(
    task, config, data, state, step_fn, mesh, workdir, ckpt, writer, source.steps_per_epoch, is_lead
  )
  batches = pipeline.Prefetcher(
    source,
    train_sharding,
    start_step=start,
    prefetch=config.data.prefetch,
    group_sizes=calls if multi_step else None,
  )
  stop = preemption.Flag()
  try:
    with stop.catching_signals(), batches, writer:
      driver.drive(run, batches, calls, config.train, start, hooks, stop)
  finally:
    ckpt.close()
  return run.state
