"""Batches of variable-length token sequences, bucketed by length so padding stays small.

An example is one 1-D int array per feature (e.g. 'source' and 'target' of a translation
pair). A batch pads each feature to its longest in the batch, so a batch of random
examples is mostly padding when lengths vary (one 60-token sentence among 15-token ones
makes the batch four times its real work). `SequenceSource` therefore draws each epoch
as `pipeline.EpochOrder` does, then sorts pools of `pool_batches` batches by length and
cuts the batches from the sorted pools: the rows of a batch have similar lengths. The
batches are shuffled within the epoch, so training does not see short-to-long sweeps.

Lengths are rounded up to a multiple of `length_multiple`: each distinct length is a
distinct shape and hence a compile of the step, and rounding bounds their number at
longest / length_multiple. The length is taken over the GLOBAL batch, so that all
processes agree on the shapes of the step they run together.

Batch `s` is a pure function of (seed, s), as everywhere in the pipeline: resuming at step
`s` replays exactly the data an uninterrupted run would have seen.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from genjax.data import files, pipeline
from genjax.data.pipeline import stack_padded  # noqa: F401 (part of this module's API)

MASK_SUFFIX = '_mask'
# Keys the pipeline adds to batches of its own ('mask': `pipeline.eval_batches`).
_RESERVED = ('index', 'mask')


def round_up(length: int, multiple: int) -> int:
  """`length` rounded up to a multiple of `multiple`, and at least one multiple.

  Never 0: a zero-width feature (all sequences empty) would compile a step of its own
  for no work.
  """
  return max(1, -(-int(length) // multiple)) * multiple


class _Feature:
  """One feature's sequences as a flat token array plus offsets, for vectorized gathers."""

  def __init__(self, name: str, sequences: Sequence[np.ndarray]):
    arrays = [np.asarray(s) for s in sequences]
    for i, a in enumerate(arrays):
      if a.ndim != 1 or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
        raise files.DataError(
          f'Example {i} of feature {name!r} is a {a.dtype} array of shape {a.shape}; '
          'each sequence must be a 1-D array of integer token ids.'
        )
    self.name = name
    self.lengths = np.array([a.size for a in arrays], dtype=np.int64)
    self.offsets = np.cumsum(self.lengths) - self.lengths
    # A trailing 0 that padded positions read from: the gather below stays one fancy
    # index even when every sequence is empty.
    flat = np.concatenate([a.astype(np.int64) for a in arrays] + [np.zeros(1, np.int64)])
    if flat.min() < np.iinfo(np.int32).min or flat.max() > np.iinfo(np.int32).max:
      raise files.DataError(f'Feature {name!r} has token ids outside int32; batches are int32.')
    self.tokens = flat.astype(np.int32)

  def gather(self, idx: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows `idx` right-padded with 0 to `length`, and their mask."""
    positions = np.arange(length)
    mask = positions < self.lengths[idx][:, None]
    flat_index = np.where(mask, self.offsets[idx][:, None] + positions, self.tokens.size - 1)
    return self.tokens[flat_index], mask


def _features(examples: Mapping[str, Sequence[np.ndarray]]) -> dict[str, _Feature]:
  if not examples:
    raise ValueError('No features given: examples must map names to lists of sequences.')
  counts = {name: len(seqs) for name, seqs in examples.items()}
  if len(set(counts.values())) != 1:
    raise ValueError(f'Features with different numbers of examples: {counts}')
  clashes = sorted(set(examples) & ({n + MASK_SUFFIX for n in examples} | set(_RESERVED)))
  if clashes:
    raise ValueError(
      f'Feature names {clashes} clash with the keys batches add '
      f"('<name>{MASK_SUFFIX}', {', '.join(map(repr, _RESERVED))}); rename them."
    )
  return {name: _Feature(name, seqs) for name, seqs in examples.items()}


def padding_share(batch: Mapping[str, np.ndarray]) -> float:
  """Padded positions / all positions over the batch's sequence features.

  Any batch with '<name>_mask' keys: one from `SequenceSource.batch`, a `stack_padded`
  group, or `padded_arrays`. The share is the fraction of the step's sequence work spent
  on padding, which is what bucketing exists to keep small.
  """
  masks = [np.asarray(v) for k, v in batch.items() if k.endswith(MASK_SUFFIX)]
  total = sum(m.size for m in masks)
  if not total:
    return 0.0
  return 1.0 - sum(int(m.sum()) for m in masks) / total


class SequenceSource:
  """Length-bucketed batches of variable-length sequences; batch `step` depends only on
  (seed, step).

  Per epoch: a permutation from `default_rng([seed, epoch])`, cut to whole batches (the
  incomplete last batch is dropped, as `pipeline.steps_per_epoch` counts); consecutive
  pools of `pool_batches * batch_size` examples are stably sorted by length (the longest
  feature of each example) and cut into batches, and the batches are shuffled with the
  same rng. Larger pools give tighter buckets but batches whose rows are less mixed
  (pool_batches=1 is plain random batching).

  `batch(step)` gives this process's rows: per feature `name`, int32 `name` right-padded
  with 0 and bool `name + '_mask'`, both `[local_batch, L]` with `L` the longest of
  that feature in the global batch rounded up to `length_multiple`; plus 'index'.
  """

  def __init__(
    self,
    examples: Mapping[str, Sequence[np.ndarray]],
    batch_size: int,
    seed: int,
    length_multiple: int = 8,
    max_length: int | None = None,
    pool_batches: int = 100,
  ):
    if length_multiple < 1 or pool_batches < 1:
      raise ValueError(
        f'length_multiple={length_multiple} and pool_batches={pool_batches} must be at least 1.'
      )
    self.features = _features(examples)
    self.num_examples = len(next(iter(self.features.values())).lengths)
    self.steps_per_epoch = pipeline.steps_per_epoch(self.num_examples, batch_size)
    self.batch_size, self.seed = batch_size, seed
    self.length_multiple, self.pool_batches = length_multiple, pool_batches
    # The sort key: the longest feature bounds the example's share of the step's work.
    self.lengths = np.max([f.lengths for f in self.features.values()], axis=0)
    if max_length is not None:
      too_long = self.lengths > max_length
      if too_long.any():
        raise files.DataError(
          f'{int(too_long.sum())} of the {self.num_examples} examples have a sequence longer '
          f'than max_length={max_length} tokens (the longest has {int(self.lengths.max())}). '
          'Raise max_length, or filter the data (drop or truncate those examples) first.'
        )
    self.max_length = max_length
    self._epoch: tuple[int, np.ndarray] | None = None

  def epoch_batches(self, epoch: int) -> np.ndarray:
    """Example indices of every batch of `epoch`, in step order: [steps_per_epoch, batch]."""
    cached = self._epoch  # one read: the prefetch thread may replace it meanwhile
    if cached is not None and cached[0] == epoch:
      return cached[1]
    rng = np.random.default_rng([self.seed, epoch])
    # Dropped before pooling, so the dropped examples are random ones, not the longest of
    # the last pool (which would leave the longest examples under-trained).
    perm = rng.permutation(self.num_examples)[: self.steps_per_epoch * self.batch_size]
    pool = self.pool_batches * self.batch_size
    order = np.concatenate(
      [
        perm[i : i + pool][np.argsort(self.lengths[perm[i : i + pool]], kind='stable')]
        for i in range(0, len(perm), pool)
      ]
    )
    batches = order.reshape(self.steps_per_epoch, self.batch_size)
    batches = batches[rng.permutation(self.steps_per_epoch)]
    self._epoch = (epoch, batches)
    return batches

  def indices(self, step: int) -> np.ndarray:
    """The global batch's example indices."""
    epoch, position = divmod(step, self.steps_per_epoch)
    return self.epoch_batches(epoch)[position]

  def batch(self, step: int) -> dict[str, np.ndarray]:
    idx = self.indices(step)
    rows = pipeline.process_slice(self.batch_size)
    batch = {}
    for name, feature in self.features.items():
      length = round_up(feature.lengths[idx].max(), self.length_multiple)
      batch[name], batch[name + MASK_SUFFIX] = feature.gather(idx[rows], length)
    batch['index'] = np.arange(rows.start, rows.stop, dtype=np.int32)
    return batch

  def example(self) -> dict[str, np.ndarray]:
    """Zeros of the global batch's shape at the longest bucket: what `init` traces from.

    Masks are all True: a fully masked example could make a mean over real tokens 0/0
    while tracing.
    """
    example = {}
    for name, feature in self.features.items():
      shape = (self.batch_size, round_up(feature.lengths.max(), self.length_multiple))
      example[name] = np.zeros(shape, np.int32)
      example[name + MASK_SUFFIX] = np.ones(shape, bool)
    example['index'] = np.arange(self.batch_size, dtype=np.int32)
    return example


def padded_arrays(
  examples: Mapping[str, Sequence[np.ndarray]], length_multiple: int = 8
) -> dict[str, np.ndarray]:
  """A whole split as fixed arrays in the original order, with masks.

  Each feature is padded to the split's longest (rounded up to `length_multiple`), so
  fixed-order evaluation batches (`pipeline.eval_batches`) all share one shape and the
  eval step compiles once.
  """
  arrays = {}
  for name, feature in _features(examples).items():
    idx = np.arange(len(feature.lengths))
    length = round_up(feature.lengths.max() if idx.size else 0, length_multiple)
    arrays[name], arrays[name + MASK_SUFFIX] = feature.gather(idx, length)
  return arrays
