"""Orbax checkpoints of the train state and the loop's position.

A checkpoint holds two items: `state` (the TrainState: step, params, optimizer state,
PRNG key) and `meta` (JSON: step, epoch, seed — the data position, which with the
pipeline's (seed, step) order is enough to replay the data exactly). Saves are
asynchronous and atomic (Orbax writes to a temporary directory and renames it), so an
interrupted save never leaves a half checkpoint that looks finished. If the latest
checkpoint still cannot be read, `restore_latest` warns and falls back to the one
before.

In a multi-process run every process calls `save` and `restore` (Orbax coordinates
them: each writes its shards, process 0 the metadata and the final rename) on one
directory all of them see.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils


def _save_replicas_whole_on_cpu() -> None:
  """On CPU, Orbax writes each replicated array from one replica, not in slices.

  Orbax's default on CPU and TPU splits a replicated array into one slice per replica,
  for replicas on different hosts to write in parallel. On CPU devices that share one
  host that buys nothing, and each slice is an eager op: one compile per array shape in
  every new process (44 of the 68 compiles of a tiny autoencoder's train-and-resume).
  """
  if jax.default_backend() == 'cpu':
    ocp.type_handlers.register_type_handler(
      jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False), override=True
    )


class Checkpointer:
  def __init__(self, directory: str | os.PathLike, keep: int = 3, async_save: bool = True):
    _save_replicas_whole_on_cpu()
    self.directory = os.path.abspath(os.fspath(directory))
    options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, create=True, enable_async_checkpointing=async_save
    )
    self.manager = ocp.CheckpointManager(
      self.directory, options=options, item_names=('state', 'meta')
    )

  def save(self, step: int, state: Any, meta: dict, force: bool = True) -> bool:
    return self.manager.save(
      step,
      args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
      force=force,
    )

  def steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def latest_step(self) -> int | None:
    steps = self.steps()
    return steps[-1] if steps else None

  def restore(self, step: int, like: Any) -> tuple[Any, dict]:
    """Restores `step` into the structure, dtypes and shardings of `like`."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    restored = self.manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
      ),
    )
    return restored['state'], restored['meta']

  def restore_latest(self, like: Any) -> tuple[Any, dict] | None:
    """The newest readable checkpoint, or None if there is none at all."""
    for step in reversed(self.steps()):
      try:
        return self.restore(step, like)
      except Exception as e:  # pylint: disable=broad-except
        aside = self._set_aside(step)
        logging.warning(
          'Checkpoint at step %d in %s is unreadable (%s: %s); moved it to %s '
          'and falling back to the previous one.',
          step,
          self.directory,
          type(e).__name__,
          e,
          aside,
        )
    if self.steps():
      raise RuntimeError(f'No readable checkpoint in {self.directory} (steps {self.steps()}).')
    return None

  def _set_aside(self, step: int) -> str:
    """Moves a damaged step out of the manager's sight (kept, not deleted)."""
    aside = os.path.join(self.directory + '.damaged', str(step))
    if jax.process_index() == 0:  # the directory is shared: one process moves it
      os.makedirs(os.path.dirname(aside), exist_ok=True)
      if os.path.exists(aside):
        shutil.rmtree(aside)
      os.replace(os.path.join(self.directory, str(step)), aside)
    if jax.process_count() > 1:  # the others look again only once it has moved
      multihost_utils.sync_global_devices(f'genjax_checkpoint_set_aside_{step}')
    self.manager.reload()
    return aside

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
