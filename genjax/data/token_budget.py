"""Batches of sentence pairs under a token budget, as translation trainers cut them.

A fixed number of rows wastes a batch of short sentences and overflows one of long ones;
fairseq and tensor2tensor instead fill each batch up to a number of tokens
(`tokens_per_batch`), so a batch of 10-token sentences has four times the rows of a batch
of 40-token ones. Under XLA every (rows, length) is a shape and a compilation, so lengths
are rounded up to a multiple of `length_multiple` and each rounded length L has one row
count, `rows(L)`: the most rows of length L within the budget, a multiple of
`row_multiple` (the devices the batch is split over). There are then at most
max_length / length_multiple shapes, each compiled once.

Per epoch, a permutation from `default_rng([seed, epoch])` is cut into pools of
`pool_size` examples; each pool is sorted by length (the longest feature of an example)
and cut greedily into batches that fit the budget; the batches of the epoch are then
shuffled with the same rng. A batch with fewer real examples than its shape's rows (the
end of a pool) is filled with empty rows whose masks are all False. Batch `step` is a
pure function of (seed, step): resuming replays exactly the batches an uninterrupted run
sees.

Each batch also carries `token_scale` [rows]: the global batch's rows over its real
tokens of `count_feature`. A loss that sums an example's token losses and multiplies by
it has the batch mean equal to the mean loss per token of the whole global batch, however
the rows are split over devices or micro-batches (see `genjax.tasks.seq2seq`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from genjax.data import files, pipeline
from genjax.data.sequences import MASK_SUFFIX, _features, round_up

EMPTY_ROW = -1  # an index that marks a filler row


class TokenBudgetSource:
  """Length-bucketed batches of at most `tokens_per_batch` tokens (rows x padded length)."""

  def __init__(
    self,
    examples: Mapping[str, Sequence[np.ndarray]],
    tokens_per_batch: int,
    seed: int,
    *,
    count_feature: str,
    length_multiple: int = 8,
    row_multiple: int = 1,
    pool_size: int = 4096,
    fixed_length_features: Sequence[str] = (),
  ):
    self.features = _features(examples)
    for name in (count_feature, *fixed_length_features):
      if name not in self.features:
        raise ValueError(f'{name!r} is not one of the features {list(self.features)}')
    self.num_examples = len(self.features[count_feature].lengths)
    self.fixed = {
      name: round_up(int(self.features[name].lengths.max()), length_multiple)
      for name in fixed_length_features
    }
    self.lengths = np.max(
      [
        np.full_like(f.lengths, self.fixed[n]) if n in self.fixed else f.lengths
        for n, f in self.features.items()
      ],
      axis=0,
    )
    self.seed, self.budget, self.count_feature = seed, int(tokens_per_batch), count_feature
    self.length_multiple, self.row_multiple, self.pool_size = (
      length_multiple,
      row_multiple,
      pool_size,
    )
    longest = round_up(int(self.lengths.max()), length_multiple)
    if self.rows(longest) == 0:
      raise files.DataError(
        f'data.tokens_per_batch={self.budget} does not hold {row_multiple} row(s) of the '
        f'longest example ({int(self.lengths.max())} tokens, padded to {longest}): raise it '
        f'to at least {longest * row_multiple}, or drop long examples (data.max_length).'
      )
    self._epochs: dict[int, list[np.ndarray]] = {}
    self._starts = [0]  # step at which each computed epoch starts
    self.steps_per_epoch = len(self.epoch_batches(0))

  def rows(self, length: int) -> int:
    """The row count of a batch padded to `length`: a multiple of row_multiple in budget."""
    return (self.budget // length) // self.row_multiple * self.row_multiple

  def epoch_batches(self, epoch: int) -> list[np.ndarray]:
    """Example indices of every batch of `epoch`, in step order (EMPTY_ROW fills)."""
    if epoch in self._epochs:
      return self._epochs[epoch]
    rng = np.random.default_rng([self.seed, epoch])
    perm = rng.permutation(self.num_examples)
    batches = []
    for start in range(0, len(perm), self.pool_size):
      pool = perm[start : start + self.pool_size]
      pool = pool[np.argsort(self.lengths[pool], kind='stable')]
      i = 0
      while i < len(pool):
        n = 1  # sorted by length: the batch's last row is its longest
        while i + n < len(pool):
          length = round_up(int(self.lengths[pool[i + n]]), self.length_multiple)
          if n + 1 > self.rows(length):
            break
          n += 1
        length = round_up(int(self.lengths[pool[i + n - 1]]), self.length_multiple)
        batch = np.full(self.rows(length), EMPTY_ROW, np.int64)
        batch[:n] = pool[i : i + n]
        batches.append(batch)
        i += n
    batches = [batches[j] for j in rng.permutation(len(batches))]
    # Keep the last two epochs: the prefetch thread may still read the previous one.
    self._epochs = {e: b for e, b in self._epochs.items() if e >= epoch - 1}
    self._epochs[epoch] = batches
    return batches

  def _locate(self, step: int) -> tuple[int, int]:
    while self._starts[-1] <= step:  # epochs differ in length: count them up to `step`
      epoch = len(self._starts) - 1
      self._starts.append(self._starts[-1] + len(self.epoch_batches(epoch)))
    epoch = int(np.searchsorted(self._starts, step, side='right')) - 1
    return epoch, step - self._starts[epoch]

  def indices(self, step: int) -> np.ndarray:
    """The global batch's example indices (EMPTY_ROW for a filler row)."""
    epoch, position = self._locate(step)
    return self.epoch_batches(epoch)[position]

  def batch(self, step: int) -> dict[str, np.ndarray]:
    idx = self.indices(step)
    real = idx != EMPTY_ROW
    length = round_up(int(self.lengths[idx[real]].max()), self.length_multiple)
    rows = pipeline.process_slice(len(idx))
    batch = {}
    for name, feature in self.features.items():
      tokens, mask = feature.gather(np.where(real, idx, 0)[rows], self.fixed.get(name, length))
      mask &= real[rows][:, None]
      batch[name], batch[name + MASK_SUFFIX] = np.where(mask, tokens, 0), mask
    counted = int(self.features[self.count_feature].lengths[idx[real]].sum())
    batch['token_scale'] = np.full(rows.stop - rows.start, len(idx) / counted, np.float32)
    batch['index'] = np.arange(rows.start, rows.stop, dtype=np.int32)
    return batch

  def example(self) -> dict[str, np.ndarray]:
    """Zeros of the longest bucket's shape, masks True: what `init` traces from."""
    length = round_up(int(self.lengths.max()), self.length_multiple)
    rows = self.rows(length)
    example = {}
    for name in self.features:
      shape = (rows, self.fixed.get(name, length))
      example[name] = np.zeros(shape, np.int32)
      example[name + MASK_SUFFIX] = np.ones(shape, bool)
    example['token_scale'] = np.ones(rows, np.float32)
    example['index'] = np.arange(rows, dtype=np.int32)
    return example
