"""`train_and_evaluate(config, workdir)`: the model-agnostic training loop.

The loop knows a `Task` (a family's pure functions), a mesh and a workdir; it never
knows which model it trains. Per step (or per call of `train.steps_per_call` steps) it
does no host work but fetching the next prefetched batch and dispatching the compiled
step: metrics are summed on the device and read back only at log, eval and checkpoint
steps.
"""

from __future__ import annotations

import collections
import itertools
import math
import os
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from genjax import config as config_lib
from genjax import tasks
from genjax.data import datasets, pipeline
from genjax.run import checkpoints, preemption, restore, workdir as workdir_lib
from genjax.step import parallel, state as state_lib, train_step
from genjax.writers.metrics import MetricWriter

Hook = Callable[[int, state_lib.TrainState], None]

# Steps the host may dispatch ahead of the devices. Unbounded async dispatch queued
# hundreds of steps between log lines; on XLA:CPU with several (fake) devices on few
# cores, the queued programs then starved a cross-device all-reduce past XLA's 40 s
# rendezvous timeout and the process aborted. Waiting on the step K back keeps the
# devices' queue full (the host is still K steps ahead) while bounding it.
MAX_STEPS_IN_FLIGHT = 4


class DispatchLimiter:
  """Keeps at most `limit` steps dispatched ahead of the devices (see MAX_STEPS_IN_FLIGHT).

  Call it with an array each step produces; it waits on the one `limit` steps back.
  Benchmarks and research loops that drive a compiled step themselves need it too.
  """

  def __init__(self, limit: int = MAX_STEPS_IN_FLIGHT):
    self.limit = limit
    self._pending = collections.deque()

  def __call__(self, value: jax.Array) -> None:
    self._pending.append(value)
    if len(self._pending) > self.limit:
      self._pending.popleft().block_until_ready()


class NonFiniteLossError(FloatingPointError):
  """Training produced NaN/inf; the last good checkpoint is kept."""


def init_state(task, config, tx, example: dict, mesh) -> state_lib.TrainState:
  """Initial state, created directly replicated on the mesh (compiled, no host copy)."""
  create = lambda rng, example: train_step.initial_state(task, config, tx, rng, example)
  return jax.jit(create, out_shardings=parallel.replicated(mesh))(
      jax.random.PRNGKey(config.seed), example)


# Compiled once: run eagerly, each of its ops was a separate dispatch to every device,
# every step. Not donated: the dispatch limiter still holds an earlier step's count.
@jax.jit
def _accumulate(acc: dict, metrics: dict, step: jax.Array) -> dict:
  """Running sums of the step metrics and the first step (1-based) whose loss was not finite.

  `metrics` are one step's, or (from a multi-step call) those of the steps ending at
  `step`, stacked on a leading axis.
  """
  if metrics['loss'].ndim == 0:
    metrics = jax.tree.map(lambda m: m[None], metrics)
  n = metrics['loss'].shape[0]
  steps = step - n + 1 + jnp.arange(n, dtype=jnp.int32)
  bad = jnp.where(jnp.isfinite(metrics['loss']), np.iinfo(np.int32).max, steps)
  sums = jax.tree.map(lambda a, m: a + m.astype(jnp.float32).sum(0), acc['sums'], metrics)
  return {'sums': sums, 'count': acc['count'] + n,
          'first_bad': jnp.minimum(acc['first_bad'], bad.min())}


def _empty_accumulator(metrics: dict) -> dict:
  """Zero sums shaped as one step's metrics (`metrics` may come stacked from a call)."""
  stacked = metrics['loss'].ndim == 1
  return {
      'sums': jax.tree.map(
          lambda m: jnp.zeros(m.shape[1:] if stacked else m.shape, jnp.float32), metrics),
      'count': jnp.zeros((), jnp.int32),
      'first_bad': jnp.asarray(np.iinfo(np.int32).max, jnp.int32),
  }


def call_sizes(start: int, train: ml_collections.ConfigDict) -> list[int]:
  """Steps per compiled call from `start` to `train.steps`.

  `train.steps_per_call` at a time, but no call runs past a step the loop acts on (a
  multiple of log_every, eval_every, sample_every or checkpoint_every, or the last step),
  so logging, evaluation, samples and checkpoints happen at the same steps as with one
  step per call.
  """
  every = [e for e in (train.log_every, train.eval_every, train.sample_every,
                       train.checkpoint_every) if e > 0]
  sizes, step = [], start
  while step < train.steps:
    end = min([train.steps, step + train.steps_per_call] + [(step // e + 1) * e for e in every])
    sizes.append(end - step)
    step = end
  return sizes


def make_eval_fn(task, mesh):
  """Masked sums of the task's per-example metrics over one batch, compiled once."""

  @jax.jit
  def eval_batch(params, batch, rng):
    per_example = task.eval_metrics(params, batch, rng)
    mask = batch['mask'].astype(jnp.float32)
    return {k: jnp.sum(v * mask) for k, v in per_example.items()}, jnp.sum(mask)

  def evaluate(params, arrays: dict, batch_size: int, rng) -> dict[str, float]:
    totals, count = None, 0.0
    for i, batch in enumerate(pipeline.eval_batches(arrays, batch_size,
                                                    parallel.batch_sharding(mesh))):
      sums, n = eval_batch(params, batch, jax.random.fold_in(rng, i))
      totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
      count += n
    return {k: float(v) / float(count) for k, v in jax.device_get(totals).items()}

  return evaluate


def write_sample(task, variables, arrays: dict, rng, step: int, workdir: str,
                 writer: MetricWriter, is_lead: bool) -> None:
  """The default view at `step`: samples/step_N.png (pictures), .txt (text), ..."""
  drawn = task.views[task.default_view](variables, arrays, rng, 64)
  if is_lead:
    drawn.save(os.path.join(workdir, 'samples', f'step_{step:08d}'))
  drawn.log(writer, step, 'samples')


def evaluate_now(task, evaluate, variables, data, eval_subset: dict, batch_size: int,
                 rng) -> dict[str, float]:
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
  return (f'step {step}/{total} loss={metrics["loss"]:.4f} {shown} | '
          f'{steps_per_s:.2f} steps/s, data wait {100 * metrics["data_wait_fraction"]:.1f}%, '
          f'ETA {eta_text}')


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       allow_config_change: bool = False,
                       hooks: Sequence[Hook] = ()) -> state_lib.TrainState:
  """Trains (or resumes) `config` in `workdir`; returns the final state.

  `hooks` run after every step with (step, state); they are the extension point for
  research code (and how tests stop a run at a chosen step). With
  `train.steps_per_call` > 1 they run after every call, with its last step.
  """
  # Everything that can fail on user input fails here, before anything is written.
  config_lib.validate(config)
  tasks.check_fields(config)
  workdir = os.path.abspath(workdir)
  mesh = parallel.make_mesh()
  parallel.check_batch_size(config.data.batch_size, mesh)
  train_step.check_accumulation(config, config.data.batch_size // mesh.devices.size)
  workdir_lib.check_or_write_config(config, workdir, allow_config_change, write=False)
  data = datasets.load(config.data, workdir=workdir)
  task = tasks.build(config, data.spec, restore.RUNS)
  tx = task.make_optimizer(config)
  step_fn = train_step.train_step(task, config, tx)  # a family's refusal comes before writing

  is_lead = jax.process_index() == 0
  if is_lead:
    workdir_lib.check_or_write_config(config, workdir, allow_config_change, write=True)
    data.spec.save(workdir)
  ckpt = checkpoints.Checkpointer(os.path.join(workdir, 'checkpoints'),
                                  keep=config.train.keep_checkpoints)
  source = data.train_source(config.data.batch_size, config.seed)
  state = init_state(task, config, tx, source.example(), mesh)
  restored = ckpt.restore_latest(state)
  if restored is not None:
    state, meta = restored
    logging.info('Resumed from step %d of %s.', meta['step'], ckpt.directory)
  start = int(state.step)

  # Several steps per call (a lax.scan) when train.steps_per_call > 1: one dispatch and
  # one host synchronisation per call instead of per step.
  multi_step = config.train.steps_per_call > 1
  step_fn = parallel.compile_step(step_fn, mesh, config.parallel.strategy,
                                  multi_step=multi_step)
  if multi_step:
    calls = call_sizes(start, config.train)
    train_sharding = parallel.stacked_batch_sharding(mesh)
  else:
    calls = itertools.repeat(1, max(config.train.steps - start, 0))
    train_sharding = parallel.batch_sharding(mesh)
  evaluate = make_eval_fn(task, mesh)
  eval_rng = jax.random.PRNGKey(config.seed + 1)  # same eval noise at every eval
  sample_rng = jax.random.PRNGKey(config.seed + 2)  # same latents: samples comparable over time
  writer = MetricWriter(workdir, enabled=is_lead)

  last_saved = start

  def save(step: int) -> None:
    nonlocal last_saved
    last_saved = step
    ckpt.save(step, state, {'step': step, 'epoch': step // source.steps_per_epoch,
                            'seed': config.seed})

  def check_finite(acc) -> None:
    first_bad = int(acc['first_bad'])
    if first_bad != np.iinfo(np.int32).max:
      ckpt.wait()
      latest = ckpt.latest_step()
      kept = (f'The last good checkpoint (step {latest}) is kept in {ckpt.directory}.'
              if latest is not None else 'No checkpoint had been written yet.')
      raise NonFiniteLossError(
          f'Loss became NaN/inf at step {first_bad}; stopped. {kept} Lower '
          'optim.learning_rate or set optim.grad_clip_norm.')

  batches = pipeline.Prefetcher(source, train_sharding, start_step=start,
                                prefetch=config.data.prefetch,
                                group_sizes=calls if multi_step else None)
  eval_subset = {k: v[:config.eval.num_examples] for k, v in data.test.items()}
  acc = None
  in_flight = DispatchLimiter()
  last_time, last_step, last_wait = time.perf_counter(), start, 0.0
  side_work = 0.0  # seconds spent on eval/samples/checkpoints: not part of steps/s
  stop = preemption.Flag()
  try:
    with stop.catching_signals(), batches, writer:
      done = start
      for steps in calls:
        state, metrics = step_fn(state, next(batches))
        if acc is None:
          acc = _empty_accumulator(metrics)
        acc = _accumulate(acc, metrics, state.step)
        in_flight(acc['count'])
        done += steps
        for hook in hooks:
          hook(done, state)
        final = done == config.train.steps

        if done % config.train.log_every == 0 or final:
          check_finite(acc)
          sums, count = jax.device_get((acc['sums'], acc['count']))
          means = {k: float(v) / int(count) for k, v in sums.items()}
          now = time.perf_counter()
          elapsed = now - last_time - side_work
          rate = (done - last_step) / elapsed
          # Share of the interval the loop stood waiting for input: ~0 when prefetch keeps up.
          means['data_wait_fraction'] = (batches.wait_seconds - last_wait) / elapsed
          last_time, last_step, last_wait, side_work = now, done, batches.wait_seconds, 0.0
          means['steps_per_s'] = rate
          writer.write(done, 'train', means)
          logging.info(_progress_line(done, config.train.steps, means, rate))
          warning = task.diagnose(done, means) if task.diagnose is not None else None
          if warning:
            logging.warning('step %d: %s', done, warning)
          acc = _empty_accumulator(metrics)

        side_start = time.perf_counter()
        if config.train.eval_every and (done % config.train.eval_every == 0 or final):
          scalars = evaluate_now(task, evaluate, task.inference_variables(state), data,
                                 eval_subset, config.eval.batch_size, eval_rng)
          if scalars:
            writer.write(done, 'test', scalars)
            logging.info('test @ %d: %s', done,
                         ' '.join(f'{k}={v:.4f}' for k, v in sorted(scalars.items())))

        draw = task.views and config.train.sample_every
        if draw and (done % config.train.sample_every == 0 or final):
          write_sample(task, task.inference_variables(state), data.test, sample_rng, done,
                       workdir, writer, is_lead)

        if done % config.train.checkpoint_every == 0 or final:
          check_finite(acc)
          save(done)
        side_work += time.perf_counter() - side_start

        # Asked of every step, as multi-host preemption sync points are step numbers.
        if any([stop.should_stop(s) for s in range(done - steps + 1, done + 1)]):
          check_finite(acc)
          if last_saved != done:
            save(done)
          logging.warning('Stopping on %s at step %d; checkpoint saved. Run the same '
                          'command to resume.', stop.signal_name, done)
          break
  finally:
    ckpt.close()
  return state
