"""What the step benchmarks share: an experiment's compiled train step, and timing it.

`setup` builds the step as `launch.main` does (mesh over all devices, the real
pipeline's source, the replicated initial state, `train.steps_per_call` steps per call);
`prefetcher` feeds it as the loop does; `compile_step` compiles it ahead of time and
reads XLA's FLOP count; `run_steps` times calls with the loop's bounded async dispatch
(unbounded dispatch aborts on fake CPU devices).
"""

from __future__ import annotations

import time

import jax

from genjax import tasks
from genjax.data import datasets, pipeline
from genjax.run import loop, restore
from genjax.step import parallel, train_step


def setup(config, data=None):
  """(mesh, data, task, source, state, step) for `config` (data loaded unless given)."""
  mesh = parallel.mesh_of(config.parallel.mesh)
  data = datasets.load(config.data) if data is None else data
  task = tasks.build(config, data.spec, restore.RUNS)
  tx = task.make_optimizer(config)
  source = data.train_source(config.data.batch_size, config.seed)
  state = loop.init_state(task, config, tx, source.example(), mesh)
  step = parallel.compile_step(
    train_step.train_step(task, config, tx),
    mesh,
    config.parallel.strategy,
    multi_step=config.train.steps_per_call > 1,
    state_sharding=jax.tree.map(lambda x: x.sharding, state),
  )
  return mesh, data, task, source, state, step


def prefetcher(source, mesh, config, steps: int) -> pipeline.Prefetcher:
  """Device batches for `steps` steps, stacked `train.steps_per_call` at a time if > 1."""
  per_call = config.train.steps_per_call
  if per_call == 1:
    return pipeline.Prefetcher(source, parallel.batch_sharding(mesh))
  if steps % per_call:
    raise ValueError(
      f'{steps} steps are not a whole number of calls of train.steps_per_call={per_call}'
    )
  return pipeline.Prefetcher(
    source, parallel.stacked_batch_sharding(mesh), group_sizes=[per_call] * (steps // per_call)
  )


def compile_step(step, state, batch):
  """(compiled step, compile seconds, FLOPs per step over all devices)."""
  start = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  # XLA counts the FLOPs of one device's program; the step runs on all of them.
  flops = jax.device_count() * float((compiled.cost_analysis() or {}).get('flops', float('nan')))
  return compiled, compile_s, flops


def run_steps(step, state, batches, n: int):
  """(state, seconds) for `n` calls of `step` on `batches`, waiting for the last to finish."""
  start = time.perf_counter()
  in_flight = loop.DispatchLimiter()
  metrics = None
  for _ in range(n):
    state, metrics = step(state, next(batches))
    in_flight(metrics['loss'])
  jax.block_until_ready((state, metrics))
  return state, time.perf_counter() - start
