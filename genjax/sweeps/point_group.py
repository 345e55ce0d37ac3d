"""A vectorized group of sweep points as the shared loop (`genjax.run.driver`) drives it.

The points' states are stacked on a leading axis; each point keeps its own workdir,
metric writer, Orbax checkpointer and NaN record, so a point whose loss turns NaN stops
writing (its last good checkpoint kept) while the others train on.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data import pipeline
from genjax.run import checkpoints, driver, loop
from genjax.writers.metrics import MetricWriter


def unstack(tree: Any, i: int) -> Any:
  # Host slices put back: indexing the device arrays would compile a slice per leaf shape.
  return jax.tree.map(lambda x: jax.device_put(np.asarray(x[i])), tree)


def checkpointers(workdirs: Sequence[str], **kwargs) -> list[checkpoints.Checkpointer]:
  return [checkpoints.Checkpointer(os.path.join(w, 'checkpoints'), **kwargs) for w in workdirs]


class PointGroup:
  """A vectorized group of points, as `driver.drive` sees it: stacked states, one workdir,
  writer and checkpointer per point. A point whose loss turns NaN/inf is recorded in
  `errors` and stops writing (its last good checkpoint kept), or raises when strict."""

  def __init__(self, task, configs, workdirs, data, sources, state, errors, strict: bool):
    self.task, self.configs, self.workdirs, self.data = task, configs, workdirs, data
    self.sources, self.state, self.errors, self.strict = sources, state, errors, strict
    self.points = len(configs)
    config = configs[0]
    self.eval_subset = {k: v[: config.eval.num_examples] for k, v in data.test.items()}
    self.ckpts = checkpointers(workdirs, keep=config.train.keep_checkpoints)
    self.writers = [MetricWriter(w) for w in workdirs]
    self.step_fn = self.eval_fn = self.eval_rngs = self.replicated = None

  def live(self) -> list[int]:
    return [i for i in range(self.points) if i not in self.errors]

  def step(self, batch) -> dict:
    self.state, metrics = self.step_fn(self.state, batch)
    return metrics

  def non_finite(self, done: int, first_bad) -> None:
    for i in self.live():
      if int(first_bad[i]) != driver.NO_BAD_STEP:
        self.errors[i] = (
          f'Loss became NaN/inf at step {int(first_bad[i])}; stopped. The last '
          f'good checkpoint is kept in {self.ckpts[i].directory}.'
        )
        if self.strict:
          raise FloatingPointError(f'{self.workdirs[i]}: {self.errors[i]}')

  def log(self, done: int, means: dict, steps_per_s: float, wait_fraction: float) -> None:
    for i in self.live():
      row = {k: float(v[i]) for k, v in means.items()}
      self.writers[i].write(
        done, 'train', dict(row, data_wait_fraction=wait_fraction, steps_per_s=steps_per_s)
      )

  def evaluate(self, done: int) -> None:
    """Each point's per-example means (vmapped) and corpus metrics, as `loop` evaluates."""
    results = [{} for _ in range(self.points)]
    task, config = self.task, self.configs[0]
    if task.eval_metrics is not None:
      totals, count = None, 0.0
      for j, batch in enumerate(
        pipeline.eval_batches(self.eval_subset, config.eval.batch_size, self.replicated)
      ):
        rngs = jax.vmap(jax.random.fold_in, in_axes=(0, None))(self.eval_rngs, j)  # as loop's
        sums, n = self.eval_fn(task.inference_variables(self.state), batch, rngs)
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
        count += float(n[0])
      totals = jax.device_get(totals)
      for i, result in enumerate(results):
        result.update({k: float(v[i]) / count for k, v in totals.items()})
    if task.corpus_metrics is not None:
      host = jax.device_get(self.state)
      for i in self.live():
        metrics = task.corpus_metrics(
          task.inference_variables(unstack(host, i)),
          self.data,
          jax.random.PRNGKey(self.configs[i].seed + 1),
        )
        results[i].update({k: v for k, v in metrics.items() if np.ndim(v) == 0})
    for i in self.live():
      if results[i]:
        self.writers[i].write(done, 'test', results[i])

  def sample(self, done: int) -> None:
    """Each point's default view, with its own sample key, as `loop` draws it."""
    if not self.task.views:
      return
    host = jax.device_get(self.state)
    for i in self.live():
      loop.write_sample(
        self.task,
        self.task.inference_variables(unstack(host, i)),
        self.data.test,
        jax.random.PRNGKey(self.configs[i].seed + 2),
        done,
        self.workdirs[i],
        self.writers[i],
        is_lead=True,
      )

  def checkpoint(self, done: int) -> None:
    host = jax.device_get(self.state)
    for i in self.live():
      meta = {
        'step': done,
        'epoch': done // self.sources[i].steps_per_epoch,
        'seed': self.configs[i].seed,
      }
      self.ckpts[i].save(done, unstack(host, i), meta)

  def preempted(self, done: int, signal_name: str) -> None:  # no signal handling here
    del done, signal_name

  def close(self) -> None:
    for ckpt in self.ckpts:
      ckpt.close()
    for writer in self.writers:
      writer.close()
