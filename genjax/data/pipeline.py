"""The batch pipeline: deterministic order, sharded placement, background prefetch.

Batch `s` is a pure function of (seed, s): epoch `s // steps_per_epoch` is a permutation
drawn from `(seed, epoch)`, and the batch is a contiguous slice of it. Resuming at step
`s` therefore replays exactly the data an uninterrupted run would have seen. Each
process takes its own slice of the global batch, and the slices are assembled into one
global array sharded over the mesh. A background thread keeps `prefetch` batches
already on the devices, so the step never waits for the host.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Iterator, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import NamedSharding

from genjax.config import ConfigError


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  if batch_size > num_examples:
    raise ConfigError(
      f'config.data.batch_size={batch_size} is larger than the {num_examples} training examples.'
    )
  return num_examples // batch_size  # the incomplete last batch of an epoch is dropped


class EpochOrder:
  """Global example indices for any step; caches the current epoch's permutation."""

  def __init__(self, num_examples: int, batch_size: int, seed: int):
    self.num_examples, self.batch_size, self.seed = num_examples, batch_size, seed
    self.steps_per_epoch = steps_per_epoch(num_examples, batch_size)
    self._epoch, self._perm = -1, None

  def indices(self, step: int) -> np.ndarray:
    epoch, position = divmod(step, self.steps_per_epoch)
    if epoch != self._epoch:
      self._epoch = epoch
      self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
    start = position * self.batch_size
    return self._perm[start : start + self.batch_size]


def process_slice(global_batch: int) -> slice:
  """This process's rows of the global batch."""
  local = global_batch // jax.process_count()
  start = jax.process_index() * local
  return slice(start, start + local)


def place(local: Mapping[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
  """Process-local rows -> global arrays sharded on the mesh's data axis."""
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local.items()}


def host_batch(arrays: Mapping[str, np.ndarray], order: EpochOrder, step: int) -> dict:
  """This process's rows of batch `step`, plus each row's position in the global batch.

  The position lets a step derive per-example random keys that do not depend on how the
  batch is split over devices (so 'pmap' == 'jit' == one device, noise included).
  """
  rows = process_slice(order.batch_size)
  idx = order.indices(step)[rows]
  batch = {k: v[idx] for k, v in arrays.items()}
  batch['index'] = np.arange(rows.start, rows.stop, dtype=np.int32)
  return batch


class ArraySource:
  """Batches of examples held in host arrays, in epochs (see `EpochOrder`).

  A batch source is what the `Prefetcher` reads: `batch(step)` gives this process's rows
  of global batch `step`, `example()` the arrays `init` traces shapes from, and
  `steps_per_epoch` what checkpoints record. Text corpora have their own source
  (`genjax.data.text.WindowSource`) with the same three members.
  """

  def __init__(self, arrays: Mapping[str, np.ndarray], batch_size: int, seed: int):
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
      raise ValueError(f'Arrays of different lengths: {lengths}')
    self.arrays, self.batch_size = arrays, batch_size
    self.order = EpochOrder(next(iter(lengths.values())), batch_size, seed)
    self.steps_per_epoch = self.order.steps_per_epoch

  def batch(self, step: int) -> dict:
    return host_batch(self.arrays, self.order, step)

  def example(self) -> dict:
    """The first batch_size rows with their `index` (global batch shape)."""
    example = {k: v[: self.batch_size] for k, v in self.arrays.items()}
    example['index'] = np.arange(self.batch_size, dtype=np.int32)
    return example


class Prefetcher:
  """Iterates device batches of `source` from `start_step`, made by a background thread.

  With `group_sizes` (for steps run several per call), item i stacks the next
  `group_sizes[i]` batches on a new leading axis (`sharding` is then
  `parallel.stacked_batch_sharding`), and the stream ends after the last group.
  `wait_seconds` accumulates the time `next()` spent blocked: the data-wait figure the
  benchmark reports.
  """

  def __init__(
    self,
    source,
    sharding: NamedSharding,
    start_step: int = 0,
    prefetch: int = 2,
    group_sizes: Sequence[int] | None = None,
  ):
    self.source, self.sharding = source, sharding
    self.step = start_step
    self.wait_seconds = 0.0
    self._ended = False
    self._queue: queue.Queue = queue.Queue(maxsize=max(prefetch, 1))
    self._stop = threading.Event()
    self._thread = threading.Thread(
      target=self._produce, args=(start_step, group_sizes), daemon=True
    )
    self._thread.start()

  def _produce(self, step: int, group_sizes: Sequence[int] | None) -> None:
    try:
      if group_sizes is None:  # endless; the loop decides when to stop reading
        while not self._stop.is_set():
          self._put((1, place(self.source.batch(step), self.sharding)))
          step += 1
        return
      for n in group_sizes:
        if self._stop.is_set():
          return
        stacked = stack_padded([self.source.batch(s) for s in range(step, step + n)])
        self._put((n, place(stacked, self.sharding)))
        step += n
      self._put((0, StopIteration()))
    except BaseException as e:  # surfaced in the consumer, not lost in the thread
      self._put((0, e))

  def _put(self, item) -> None:
    while not self._stop.is_set():
      try:
        self._queue.put(item, timeout=0.1)
        return
      except queue.Full:
        continue

  def __iter__(self) -> Iterator[dict]:
    return self

  def __next__(self) -> dict:
    if self._ended:
      raise StopIteration
    start = time.perf_counter()
    steps, item = self._queue.get()
    self.wait_seconds += time.perf_counter() - start
    if isinstance(item, BaseException):
      self._ended = isinstance(item, StopIteration)
      raise item
    self.step += steps
    return item

  def close(self) -> None:
    self._stop.set()
    self._thread.join(timeout=5)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def stack_padded(batches: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """Batches stacked on a new leading axis, each array padded along its axis 1 to the
  group's longest (0, or False for masks).

  Consecutive steps of different bucket lengths can then run in one compiled call; the
  padding is masked, so each step computes what it would have alone.
  """
  if not batches:
    raise ValueError('stack_padded needs at least one batch.')
  keys = list(batches[0])
  if any(list(b) != keys for b in batches):
    raise ValueError(f'Batches with different keys: {[sorted(b) for b in batches]}')
  stacked = {}
  for key in keys:
    arrays = [np.asarray(b[key]) for b in batches]
    if arrays[0].ndim >= 2:
      width = max(a.shape[1] for a in arrays)
      arrays = [
        np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2)) for a in arrays
      ]
    stacked[key] = np.stack(arrays)
  return stacked


def eval_batches(
  arrays: Mapping[str, np.ndarray], batch_size: int, sharding: NamedSharding
) -> Iterator[dict]:
  """Fixed-order batches over all examples; the last is padded and `mask` marks real rows.

  Every batch has the same shape, so the eval step compiles once.
  """
  n = len(next(iter(arrays.values())))
  rows = process_slice(batch_size)
  for start in range(0, n, batch_size):
    idx = np.arange(start, start + batch_size)
    mask = idx < n
    idx = np.where(mask, idx, 0)[rows]
    batch = {k: v[idx] for k, v in arrays.items()}
    batch['mask'] = mask[rows]
    batch['index'] = np.arange(rows.start, rows.stop, dtype=np.int32)
    yield place(batch, sharding)
