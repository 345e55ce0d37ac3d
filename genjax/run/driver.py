"""The skeleton every training run shares: calls, metric sums, and when to act.

`drive(runner, batches, calls, train, start)` is the loop of `loop.train_and_evaluate`
(one run) and of `sweeps.vectorized` (a group of runs stacked under `vmap`): it
dispatches each compiled call, sums its metrics on the device (noting the first step
whose loss is not finite), and at the log, eval, sample and checkpoint steps hands over
to the `runner`, which knows what one run or a group writes where:

  runner.points                  None for one run; the group's size (metrics [points])
  runner.state                   what hooks see
  runner.step(batch) -> metrics  one compiled call (one step, or several under a scan)
  runner.log(done, means, steps_per_s, data_wait_fraction)
      means: {name: float} for one run, {name: [points] array} for a group
  runner.non_finite(done, first_bad)   first_bad: the first non-finite step (per point);
      NO_BAD_STEP when there was none; it raises, or records a failed point
  runner.evaluate(done), runner.sample(done), runner.checkpoint(done)
  runner.preempted(done, signal_name)   after a stop request: save and say so

Per call the host does no work but fetching the prefetched batch and dispatching: the
sums are read back only at log steps.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any, Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

NO_BAD_STEP = np.iinfo(np.int32).max
Hook = Callable[[int, Any], None]

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


def _accumulate_one(acc: dict, metrics: dict, step: jax.Array) -> dict:
  """Running sums of the step metrics and the first step (1-based) whose loss was not finite.

  `metrics` are one step's, or (from a multi-step call) those of the steps ending at
  `step`, stacked on a leading axis.
  """
  if metrics['loss'].ndim == 0:
    metrics = jax.tree.map(lambda m: m[None], metrics)
  n = metrics['loss'].shape[0]
  steps = step - n + 1 + jnp.arange(n, dtype=jnp.int32)
  bad = jnp.where(jnp.isfinite(metrics['loss']), NO_BAD_STEP, steps)
  sums = jax.tree.map(lambda a, m: a + m.astype(jnp.float32).sum(0), acc['sums'], metrics)
  return {
    'sums': sums,
    'count': acc['count'] + n,
    'first_bad': jnp.minimum(acc['first_bad'], bad.min()),
  }


# Compiled once: run eagerly, each of its ops was a separate dispatch to every device,
# every step. Not donated: the dispatch limiter still holds an earlier step's count.
_accumulate = jax.jit(_accumulate_one)
_accumulate_points = jax.jit(jax.vmap(_accumulate_one))


class Accumulator:
  """The metric sums of the steps since the last log step, on the device."""

  def __init__(self, points: int | None = None):
    self.points = points
    self.sums = None

  def _empty(self, metrics: dict) -> dict:
    lead = () if self.points is None else (self.points,)
    # One step's shape: a multi-step call stacks its steps on a leading axis.
    stacked = self.points is None and metrics['loss'].ndim == 1
    return {
      'sums': jax.tree.map(
        lambda m: jnp.zeros(m.shape[1:] if stacked else m.shape, jnp.float32), metrics
      ),
      'count': jnp.zeros(lead, jnp.int32),
      'first_bad': jnp.full(lead, NO_BAD_STEP, jnp.int32),
    }

  def add(self, metrics: dict, step: jax.Array) -> jax.Array:
    """Adds a call's metrics; returns an array to wait on (the dispatch limiter's)."""
    if self.sums is None:
      self.sums = self._empty(metrics)
    add = _accumulate if self.points is None else _accumulate_points
    self.sums = add(self.sums, metrics, step)
    return self.sums['count']

  def first_bad(self) -> np.ndarray | int:
    if self.sums is None:
      return NO_BAD_STEP if self.points is None else np.full(self.points, NO_BAD_STEP)
    return np.asarray(jax.device_get(self.sums['first_bad']))

  def means(self) -> dict:
    """{name: mean} since the last reset (per point: arrays), then starts again."""
    sums, count = jax.device_get((self.sums['sums'], self.sums['count']))
    self.sums = jax.tree.map(jnp.zeros_like, self.sums)
    self.sums['first_bad'] = jnp.full_like(self.sums['first_bad'], NO_BAD_STEP)
    if self.points is None:
      return {k: float(v) / int(count) for k, v in sums.items()}
    return {k: np.asarray(v) / np.asarray(count) for k, v in sums.items()}


def call_sizes(start: int, train: ml_collections.ConfigDict) -> list[int]:
  """Steps per compiled call from `start` to `train.steps`.

  `train.steps_per_call` at a time, but no call runs past a step the loop acts on (a
  multiple of log_every, eval_every, sample_every or checkpoint_every, or the last step),
  so logging, evaluation, samples and checkpoints happen at the same steps as with one
  step per call.
  """
  every = [
    e
    for e in (train.log_every, train.eval_every, train.sample_every, train.checkpoint_every)
    if e > 0
  ]
  sizes, step = [], start
  while step < train.steps:
    end = min([train.steps, step + train.steps_per_call] + [(step // e + 1) * e for e in every])
    sizes.append(end - step)
    step = end
  return sizes


@dataclasses.dataclass(frozen=True)
class Due:
  """What the loop does after the call that ended at a step."""

  log: bool
  eval: bool
  sample: bool
  checkpoint: bool


def due(done: int, train: ml_collections.ConfigDict) -> Due:
  final = done == train.steps
  at = lambda every: bool(every) and (done % every == 0 or final)
  return Due(
    log=at(train.log_every),
    eval=at(train.eval_every),
    sample=at(train.sample_every),
    checkpoint=at(train.checkpoint_every),
  )


def drive(
  runner,
  batches,
  calls: Iterable[int],
  train: ml_collections.ConfigDict,
  start: int,
  hooks: Sequence[Hook] = (),
  stop=None,
) -> int:
  """Runs the calls from step `start`; returns the step it ended at (see module doc).

  `batches` is a `pipeline.Prefetcher` (its wait time is the data-wait figure); `stop`
  a `preemption.Flag`, asked after every step.
  """
  acc = Accumulator(runner.points)
  in_flight = DispatchLimiter()
  last_time, last_step, last_wait = time.perf_counter(), start, batches.wait_seconds
  side_work = 0.0  # seconds spent on eval/samples/checkpoints: not part of steps/s
  done = start
  for steps in calls:
    metrics = runner.step(next(batches))
    in_flight(acc.add(metrics, runner.state.step))
    done += steps
    for hook in hooks:
      hook(done, runner.state)
    act = due(done, train)

    if act.log:
      runner.non_finite(done, acc.first_bad())
      means = acc.means()
      now = time.perf_counter()
      elapsed = now - last_time - side_work
      # Share of the interval the loop stood waiting for input: ~0 when prefetch keeps up.
      wait = (batches.wait_seconds - last_wait) / elapsed
      runner.log(done, means, (done - last_step) / elapsed, wait)
      last_time, last_step, last_wait, side_work = now, done, batches.wait_seconds, 0.0

    side_start = time.perf_counter()
    if act.eval:
      runner.evaluate(done)
    if act.sample:
      runner.sample(done)
    if act.checkpoint:
      runner.non_finite(done, acc.first_bad())
      runner.checkpoint(done)
    side_work += time.perf_counter() - side_start

    # Asked of every step, as multi-host preemption sync points are step numbers.
    if stop is not None and any([stop.should_stop(s) for s in range(done - steps + 1, done + 1)]):
      runner.non_finite(done, acc.first_bad())
      runner.preempted(done, stop.signal_name)
      break
  return done
