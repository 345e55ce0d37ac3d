"""Interpolated Kneser-Ney n-gram language models over token ids: the count-based baseline
a neural language model should beat on the same tokens.

    kn = KneserNey.fit(train_tokens, vocab_size, order=3)
    kn.perplexity(val_tokens)   # exp(mean -log p) of val_tokens[1:], each given those before

Modified Kneser-Ney (Chen & Goodman, "An empirical study of smoothing techniques for
language modeling", 1998, sections 2.7 and 3): three discounts per order, for n-grams
seen once, twice and more, estimated from that order's counts of counts; `discount=d`
uses one discount everywhere (interpolated Kneser-Ney as Kneser & Ney 1995 defined it).
The highest order discounts raw counts; each lower order discounts continuation counts
(how many distinct tokens precede the n-gram), and the unigram level interpolates with
the uniform distribution over `vocab_size` ids, so every id has a probability > 0 and
the probabilities over the vocabulary sum to 1 for any context.

Counting is numpy over int64 keys (an n-gram's ids as digits base `vocab_size`): a 3-gram
model of a few million tokens fits in about a second.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class _Level:
  """The n-grams of one order: their keys (sorted), counts, and per context (the n-gram
  without its last token) the count total and the mass the discounts set aside."""

  keys: np.ndarray  # int64 [G], sorted
  counts: np.ndarray  # float64 [G]
  discounts: np.ndarray  # float64 [4]: index 0 unused, 1, 2, 3 (3 or more)
  contexts: np.ndarray  # int64 [C], sorted
  totals: np.ndarray  # float64 [C]
  reserved: np.ndarray  # float64 [C]: sum of the discounts taken from the context's n-grams

  def discount(self, counts: np.ndarray) -> np.ndarray:
    return self.discounts[np.minimum(counts, 3).astype(np.int64)]


def _discounts(counts: np.ndarray, fixed: float | None) -> np.ndarray:
  """[0, D1, D2, D3+]; Chen & Goodman's estimates, or `fixed` for all three."""
  if fixed is not None:
    return np.array([0.0, fixed, fixed, fixed])
  n = [int(np.sum(counts == k)) for k in range(1, 5)]
  if min(n) == 0:  # too few n-grams to estimate three: one discount, Ney's estimate
    y = n[0] / (n[0] + 2 * n[1]) if n[0] + n[1] else 0.5
    return np.array([0.0, y, y, y])
  y = n[0] / (n[0] + 2 * n[1])
  d = np.array([0.0, 1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]])
  # A discount outside [0, count] would give negative or unnormalized probabilities.
  return np.clip(d, 0.0, [0.0, 1.0, 2.0, 3.0])


def _level(keys: np.ndarray, counts: np.ndarray, vocab_size: int, fixed) -> _Level:
  discounts = _discounts(counts, fixed)
  contexts, first = np.unique(keys // vocab_size, return_index=True)  # keys sorted: runs
  taken = np.minimum(discounts[np.minimum(counts, 3).astype(np.int64)], counts)
  return _Level(
    keys=keys,
    counts=counts.astype(np.float64),
    discounts=discounts,
    contexts=contexts,
    totals=np.add.reduceat(counts.astype(np.float64), first),
    reserved=np.add.reduceat(taken, first),
  )


def _lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(index, found) of each query in `sorted_keys`."""
  index = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
  return index, sorted_keys[index] == queries


class KneserNey:
  """An interpolated (modified) Kneser-Ney model of order `order` over ids < vocab_size."""

  def __init__(self, levels: list[_Level], unigram: np.ndarray, vocab_size: int):
    self.levels = levels  # orders 2..n
    self.unigram = unigram  # [V] probabilities of the lowest order, uniform mixed in
    self.vocab_size = vocab_size
    self.order = len(levels) + 1

  @classmethod
  def fit(cls, tokens, vocab_size: int, order: int = 3, discount: float | None = None) -> KneserNey:
    """Counts the n-grams of one token stream (a training corpus).

    discount: None estimates modified Kneser-Ney's three discounts per order; a float in
      (0, 1] is one discount for every n-gram.
    """
    tokens = np.asarray(tokens).astype(np.int64)
    if order < 1:
      raise ValueError(f'order must be >= 1, got {order}')
    if float(vocab_size) ** order >= 2**62:
      raise ValueError(f'{order}-grams of a {vocab_size}-id vocabulary do not fit int64 keys')
    if len(tokens) < order:
      raise ValueError(f'{len(tokens)} tokens are too few for {order}-grams')
    if tokens.min() < 0 or tokens.max() >= vocab_size:
      raise ValueError(f'token ids must be in [0, {vocab_size})')
    if discount is not None and not 0 < discount <= 1:
      raise ValueError(f'discount must be in (0, 1], got {discount}')
    v = vocab_size
    # Keys of every n-gram (n = order) in the stream; lower orders come from their types.
    keys = np.zeros(len(tokens) - order + 1, np.int64)
    for j in range(order):
      keys = keys * v + tokens[j : len(tokens) - order + 1 + j]
    keys, counts = np.unique(keys, return_counts=True)
    levels = []
    for n in range(order, 1, -1):
      levels.append(_level(keys, counts, v, discount))
      # Continuation counts of the (n-1)-grams: how many distinct tokens precede each.
      keys, counts = np.unique(keys % v ** (n - 1), return_counts=True)
    # Unigrams: continuation counts (raw counts when order is 1), then the uniform floor.
    continuation = np.zeros(v)
    continuation[keys] = counts
    d = _discounts(counts, discount)
    taken = np.minimum(d[np.minimum(continuation, 3).astype(np.int64)], continuation)
    total = continuation.sum()
    unigram = (continuation - taken + taken.sum() / v) / total
    return cls(levels[::-1], unigram, v)

  def probabilities(self, history: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """p(token | history) for each row: history int [M, order - 1], most recent last,
    -1 where there is no token (the start of a stream); tokens int [M]."""
    history = np.asarray(history, np.int64).reshape(len(tokens), self.order - 1)
    tokens = np.asarray(tokens, np.int64)
    p = self.unigram[tokens]
    for n, level in enumerate(self.levels, start=2):  # contexts of n - 1 tokens
      context = history[:, history.shape[1] - (n - 1) :]
      known = np.all(context >= 0, axis=1)
      context_key = np.zeros(len(tokens), np.int64)
      for j in range(n - 1):
        context_key = context_key * self.vocab_size + np.maximum(context[:, j], 0)
      c, seen = _lookup(level.contexts, context_key)
      g, found = _lookup(level.keys, context_key * self.vocab_size + tokens)
      count = np.where(found, level.counts[g], 0.0)
      kept = np.maximum(count - level.discount(count), 0.0)
      higher = (kept + level.reserved[c] * p) / level.totals[c]
      # An unseen context backs off entirely: its lower-order distribution.
      p = np.where(known & seen, higher, p)
    return p

  def log_probs(self, stream) -> np.ndarray:
    """float64 [len(stream) - 1]: log p(stream[i] | the order - 1 tokens before it), i >= 1."""
    stream = np.asarray(stream).astype(np.int64)
    k = self.order - 1
    padded = np.concatenate([np.full(k, -1, np.int64), stream])
    columns = [padded[j : j + len(stream)] for j in range(k)]
    history = np.stack(columns, axis=1) if k else np.zeros((len(stream), 0), np.int64)
    return np.log(self.probabilities(history[1:], stream[1:]))

  def perplexity(self, stream) -> float:
    """exp of the mean negative log-probability of stream[1:] (per token)."""
    return float(np.exp(-np.mean(self.log_probs(stream))))

  def distribution(self, context) -> np.ndarray:
    """float64 [vocab_size]: p(each id | context), context the preceding ids (any number)."""
    k = self.order - 1
    context = [int(t) for t in context][-k:] if k else []
    row = np.array([-1] * (k - len(context)) + context, np.int64)
    tokens = np.arange(self.vocab_size)
    return self.probabilities(np.tile(row, (self.vocab_size, 1)), tokens)
