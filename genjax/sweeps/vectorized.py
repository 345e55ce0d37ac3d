"""Trains sweep points that differ only in shape-free values at once: `jax.vmap` over
stacked train states, one jitted step for all of them (`launch.sweep --vectorize`). The
loop is the one every run has (`genjax.run.driver.drive`); `PointGroup` is what differs:
stacked states, and per point a workdir, writer, checkpointer and NaN record.

    groups = group_points(config, points)        # by the values that change shapes
    train_vectorized(config, points, workdirs)   # one group: one compiled step

Vectorized fields (VECTORIZABLE, plus every float `loss.*` field) enter the step as
traced scalars: each point's config copy holds a tracer there, and the task, its
optimizer and its step are built from that copy inside the vmapped function, so the
optimizer state is created with the point's own hyperparameters too. Each point keeps
its own seed (init and train keys as `train_step.initial_state`), its own batch order
(`data.train_source(batch_size, seed)`) and its own eval noise; results equal separate
runs to float tolerance.

Each workdir gets what `launch.main` writes there: config.json, metrics.jsonl (train rows
every log_every, test rows every eval_every, same names) and Orbax checkpoints that
`launch.evaluate` reads, and sample grids (samples/, TensorBoard images) every
sample_every steps. The points are spread over this process's
devices (the most that divide their number: 8 points on 2 devices, 4 each), so a group
uses every GPU, or every core of a CPU run with
`XLA_FLAGS=--xla_force_host_platform_device_count=N`. An interrupted group resumes from
the newest checkpoint step that all its points have (each restored, then stacked), with
the same batches and keys, so the result equals an uninterrupted run; points with no
common checkpoint step are refused (resume them without --vectorize). A loss field
that turns out not to trace (a Python `if` on it) raises JAX's concretization error; the
sweep then groups by the loss fields too and tries again.
Test rows hold the per-example means and the family's corpus metrics (a GAN's FID),
as `loop` writes them; the group runs one step per call whatever
`train.steps_per_call` says (the same numbers).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax import config as config_lib
from genjax import tasks
from genjax.data import datasets, pipeline
from genjax.data.spec import example_batch
from genjax.run import driver, restore, workdir as workdir_lib
from genjax.step import parallel, state as state_lib, train_step
from genjax.sweeps import state as sweep_state
from genjax.sweeps.point_group import PointGroup, checkpointers, unstack

VECTORIZABLE = (
  'optim.learning_rate',
  'optim.weight_decay',
  'optim.b1',
  'optim.b2',
  'optim.eps',
  'seed',
)


def _set(config, field: str, value: Any) -> None:
  *path, last = field.split('.')
  for part in path:
    config = config[part]
  config[last] = value


def is_vectorizable(
  config: ml_collections.ConfigDict, field: str, loss_traced: bool = True
) -> bool:
  if field in VECTORIZABLE:
    return True
  # Loss weights scale terms of the loss; they trace unless a family branches on them.
  return (
    loss_traced
    and field.startswith('loss.')
    and isinstance(config_lib.get_path(config, field), float)
  )


def apply_point(config: ml_collections.ConfigDict, point: dict) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict(config.to_dict())
  for field, value in point.items():
    _set(cfg, field, value)
  return cfg


def group_points(
  config: ml_collections.ConfigDict, points: Sequence[dict], loss_traced: bool = True
) -> list[list[int]]:
  """Indices of the points, grouped by the values of their non-vectorizable fields."""
  groups: dict[str, list[int]] = {}
  for i, point in enumerate(points):
    key = repr(
      sorted((k, repr(v)) for k, v in point.items() if not is_vectorizable(config, k, loss_traced))
    )
    groups.setdefault(key, []).append(i)
  return list(groups.values())


def _traced_config(config, fields: Sequence[str], values: dict):
  """A config copy that may hold tracers: the swept fields set to this point's values."""
  cfg = ml_collections.ConfigDict(config.to_dict(), type_safe=False)
  for field in fields:
    _set(cfg, field, values[field])
  return cfg


def _stack(trees: Sequence[Any]) -> Any:
  return jax.tree.map(lambda *xs: np.stack(xs), *trees)


class _StackedSource:
  """Batch `step` of every point, stacked on a leading axis: one batch source, so the
  `pipeline.Prefetcher` builds and places it on a background thread while the step runs.
  Points with equal seeds draw the same batch; it is gathered once."""

  def __init__(self, sources: Sequence[Any], seeds: Sequence[int]):
    self.sources, self.seeds = list(sources), list(seeds)
    self.steps_per_epoch = self.sources[0].steps_per_epoch

  def batch(self, step: int) -> dict:
    by_seed: dict[int, dict] = {}
    return _stack(
      [
        by_seed.setdefault(seed, source.batch(step))
        for seed, source in zip(self.seeds, self.sources)
      ]
    )


@contextlib.contextmanager
def _opened(workdirs: Sequence[str]):
  """Synchronous checkpointers of the points, closed on the way out (lookups only)."""
  ckpts = checkpointers(workdirs, async_save=False)
  try:
    yield ckpts
  finally:
    for ckpt in ckpts:
      ckpt.close()


def _common_start(workdirs: Sequence[str]) -> int:
  """The step to resume a group from: 0 if no point has a checkpoint, else the newest
  step every point has; a clear error when there is none."""
  with _opened(workdirs) as ckpts:
    steps = [set(ckpt.steps()) for ckpt in ckpts]
  if not any(steps):
    return 0
  common = set.intersection(*steps)
  if not common:
    have = ', '.join(f'{w}: {sorted(s) or "none"}' for w, s in zip(workdirs, steps))
    raise ValueError(
      'The points of this vectorized group have no checkpoint step in common '
      f'({have}); resume them without --vectorize.'
    )
  return max(common)


def _restore(workdirs: Sequence[str], step: int, likes: Sequence[Any]) -> list[Any]:
  with _opened(workdirs) as ckpts:
    return [ckpt.restore(step, like)[0] for ckpt, like in zip(ckpts, likes)]


def train_vectorized(
  base_config: ml_collections.ConfigDict,
  points: Sequence[dict],
  workdirs: Sequence[str],
  errors: dict[int, str] | None = None,
  loss_traced: bool = True,
) -> list[state_lib.TrainState]:
  """Trains `points` (overrides of `base_config`, differing only in vectorizable fields)
  into `workdirs`, all at once; returns each point's final state.

  A point whose loss turns NaN/inf raises FloatingPointError, or, given `errors`, is
  recorded there ({index: message}) and stops writing (its last good checkpoint kept)
  while the others train on: the points never mix under vmap.
  """
  strict = errors is None
  errors = {} if errors is None else errors
  configs = [apply_point(base_config, p) for p in points]
  for cfg in configs:
    config_lib.fit_to_run(cfg)
    config_lib.validate(cfg)
    tasks.check_fields(cfg)
    if cfg.init_from:  # its parameters enter in loop._train, which a vectorized group skips
      raise config_lib.ConfigError(
        f'config.init_from={cfg.init_from!r}: a vectorized sweep starts every point from '
        'scratch; run this sweep without --vectorize.'
      )
  fields = sorted({k for p in points for k in p})
  structural = [f for f in fields if not is_vectorizable(base_config, f, loss_traced)]
  for f in structural:
    if len({repr(config_lib.get_path(c, f)) for c in configs}) > 1:
      raise ValueError(f'{f} differs between the points; group them with group_points().')
  traced = [f for f in fields if f not in structural]
  hparams = {
    f: np.asarray(
      [config_lib.get_path(c, f) for c in configs], np.int32 if f == 'seed' else np.float32
    )
    for f in traced
  }
  config = configs[0]
  workdirs = [os.path.abspath(w) for w in workdirs]
  held = contextlib.ExitStack()  # one training process per workdir, as launch.main
  for wd in workdirs:
    held.enter_context(workdir_lib.training_lock(wd))
  try:
    for cfg, wd in zip(configs, workdirs):
      workdir_lib.check_or_write_config(cfg, wd, write=True)
    start = _common_start(workdirs)

    data = datasets.load(config.data, workdir=workdirs[0])
    for wd in workdirs:
      data.spec.save(wd)
    sources = [data.train_source(c.data.batch_size, c.seed) for c in configs]
    # The points axis is the leading axis of everything stacked: shard it over the devices.
    devices = jax.local_devices()
    num_devices = max(d for d in range(1, len(devices) + 1) if len(points) % d == 0)
    mesh = parallel.make_mesh(devices[:num_devices])
    by_point, replicated = parallel.batch_sharding(mesh), parallel.replicated(mesh)

    def build(h):
      cfg = _traced_config(config, traced, h)
      task = tasks.build(cfg, data.spec, restore.RUNS)
      return task, task.make_optimizer(cfg), cfg

    def init(h, example):
      task, tx, cfg = build(h)
      rng = jax.random.PRNGKey(h['seed'] if 'seed' in h else config.seed)
      return train_step.initial_state(task, cfg, tx, rng, example)

    def step(h, state, batch):
      task, tx, cfg = build(h)
      return train_step.train_step(task, cfg, tx)(state, batch, axis_name=None)

    def eval_batch(h, params, batch, rng):
      task = build(h)[0]
      per_example = task.eval_metrics(params, batch, rng)
      mask = batch['mask'].astype(jnp.float32)
      return {k: jnp.sum(v * mask) for k, v in per_example.items()}, jnp.sum(mask)

    h = jax.device_put(hparams, by_point)
    # Each point initialised by one plain jitted init, stacked: it compiles in less than
    # half the time of the vmapped init, and runs once per point only.
    init_one = jax.jit(init)
    example = example_batch(data.spec, config.data.batch_size)
    states = [init_one({f: hparams[f][i] for f in traced}, example) for i in range(len(points))]
    if start:
      states = _restore(workdirs, start, states)
    state = jax.device_put(_stack(jax.device_get(states)), by_point)
    vmapped_step = jax.jit(jax.vmap(step), donate_argnums=(1,), out_shardings=by_point)
    eval_fn = jax.jit(jax.vmap(eval_batch, in_axes=(0, 0, None, 0)))
    task0 = build({f: hparams[f][0] for f in traced})[0]
    group = PointGroup(task0, configs, workdirs, data, sources, state, errors, strict)
    group.step_fn = lambda state, batch: vmapped_step(h, state, batch)
    group.eval_fn = lambda params, batch, rngs: eval_fn(h, params, batch, rngs)
    group.eval_rngs = jax.device_put(
      np.stack([jax.random.PRNGKey(c.seed + 1) for c in configs]), by_point
    )
    group.replicated = replicated
    batches = pipeline.Prefetcher(
      _StackedSource(sources, [c.seed for c in configs]), by_point, start_step=start
    )
    try:
      with batches:
        driver.drive(
          group,
          batches,
          itertools.repeat(1, max(config.train.steps - start, 0)),
          config.train,
          start,
        )
    finally:
      group.close()
    host = jax.device_get(group.state)
    return [unstack(host, i) for i in range(len(points))]

  finally:
    held.close()


def _run_group(config, group: Sequence[Any], report, loss_traced: bool) -> dict[str, dict]:
  """Trains one group under the runs' locks; {name: status}. A loss field that does not
  trace (the family branches on it) splits the group by it and tries again."""
  names = ', '.join(r.name for r in group)
  report(f'[start] {names}')
  began, stamp = time.perf_counter(), time.strftime('%Y-%m-%d %H:%M:%S')
  statuses, errors, failure = {}, {}, None
  with contextlib.ExitStack() as locks:
    for r in group:
      r.run_dir.mkdir(parents=True, exist_ok=True)
      locks.enter_context(sweep_state.run_lock(r.run_dir))  # as run_point: one runner a point
      status = sweep_state.read_status(r.run_dir)
      status.update(
        status='running',
        attempts=status['attempts'] + 1,
        returncode=None,
        host=socket.gethostname(),
        started=stamp,
        vectorized_with=len(group),
      )
      status.pop('error', None)
      sweep_state.write_status(r.run_dir, status)
      statuses[r.name] = status
    try:
      train_vectorized(
        config,
        [r.point for r in group],
        [str(r.run_dir) for r in group],
        errors,
        loss_traced=loss_traced,
      )
    except jax.errors.ConcretizationTypeError as e:
      if not loss_traced:
        failure = f'{type(e).__name__}: {e}'
      else:
        split = group_points(config, [r.point for r in group], loss_traced=False)
        if len(split) > 1 or any(k.startswith('loss.') for r in group for k in r.point):
          report(f'a loss field does not trace; grouping by loss fields too ({names})')
          locks.close()
          results = {}
          for g in split:
            results.update(_run_group(config, [group[i] for i in g], report, False))
          return results
        failure = f'{type(e).__name__}: {e}'
    except Exception as e:  # pylint: disable=broad-except
      # One broken group must not take the other groups down.
      failure = f'{type(e).__name__}: {e}'
    wall = time.perf_counter() - began
    for i, r in enumerate(group):
      status, error = statuses[r.name], failure or errors.get(i)
      status.update(
        {'status': 'done', 'returncode': 0}
        if error is None
        else {'status': 'failed', 'returncode': 1, 'error': [error]},
        wall_seconds=round(status['wall_seconds'] + wall, 2),
        finished=time.strftime('%Y-%m-%d %H:%M:%S'),
      )
      sweep_state.write_status(r.run_dir, status)
      report(
        f'[{"done " if error is None else "FAIL "}] {r.name} in {wall:.1f} s (vectorized)'
        + (f': {error}' if error else '')
      )
  return statuses


def run_local_vectorized(
  config: ml_collections.ConfigDict, runs: Sequence[Any], report=print
) -> dict[str, dict[str, Any]]:
  """The sweep's local backend with --vectorize: each group of points not yet done is one
  vectorized run in this process; returns {name: status} as `local.run_local` does."""
  results = {r.name: sweep_state.read_status(r.run_dir) for r in runs}
  todo = [r for r in runs if results[r.name]['status'] != 'done']
  groups = [[todo[i] for i in g] for g in group_points(config, [r.point for r in todo])]
  report(f'running {len(todo)} of {len(runs)} points as {len(groups)} vectorized group(s)')
  for group in groups:
    results.update(_run_group(config, group, report, loss_traced=True))
  return results
