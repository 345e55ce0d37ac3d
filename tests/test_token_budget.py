"""Token-budget batches: within budget, every example once an epoch, exact replay, scale."""

import numpy as np
import pytest

from genjax.data import files
from genjax.data.token_budget import EMPTY_ROW, TokenBudgetSource
from tests.conftest import batches_of_two_processes


def _pairs(n=500, seed=0):
  rng = np.random.default_rng(seed)
  source = [rng.integers(3, 50, size=rng.integers(2, 40)) for _ in range(n)]
  target = [rng.integers(3, 50, size=rng.integers(2, 30)) for _ in range(n)]
  return {'source': source, 'target': target}


def _source(examples, seed=7, **kwargs):
  fields = dict(count_feature='target', length_multiple=8, row_multiple=2, pool_size=128)
  return TokenBudgetSource(examples, 256, seed, **{**fields, **kwargs})


def test_batches_fit_the_budget_and_cover_each_epoch_once():
  examples = _pairs()
  source = _source(examples)
  seen = []
  shapes = set()
  for step in range(source.steps_per_epoch):
    batch = source.batch(step)
    rows, length = batch['source'].shape
    shapes.add((rows, length))
    assert rows * length <= 256 and rows % 2 == 0 and length % 8 == 0
    assert batch['target'].shape == (rows, length)
    idx = source.indices(step)
    real = idx != EMPTY_ROW
    seen.extend(idx[real])
    for name in ('source', 'target'):
      lengths = np.array([len(examples[name][i]) if i >= 0 else 0 for i in idx])
      np.testing.assert_array_equal(batch[name + '_mask'].sum(1), lengths)
      for row in np.flatnonzero(real):
        np.testing.assert_array_equal(batch[name][row, : lengths[row]], examples[name][idx[row]])
      assert not batch[name][~batch[name + '_mask']].any()  # padding is 0
    # Scaled per-row token counts average to one token: sums become the per-token mean.
    np.testing.assert_allclose(
      np.sum(batch['token_scale'] * batch['target_mask'].sum(1)) / rows, 1.0, rtol=1e-6
    )
  assert sorted(seen) == list(range(len(examples['source'])))
  assert len(shapes) <= 40 // 8 + 1  # one row count per padded length
  # Bucketing keeps padding small: most positions of the longer feature are real.
  assert source.steps_per_epoch < 500 / 4


def test_a_fixed_length_feature_has_one_length_and_counts_in_the_budget():
  examples = _pairs()
  examples['target'] = [t[:5] for t in examples['target']]  # short targets of long sources
  source = _source(examples, fixed_length_features=('target',))
  seen = []
  for step in range(source.steps_per_epoch):
    batch = source.batch(step)
    rows, length = batch['source'].shape
    assert batch['target'].shape == (rows, 8)  # the longest target (5), rounded up
    assert rows * max(length, 8) <= 256
    idx = source.indices(step)
    seen.extend(idx[idx != EMPTY_ROW])
    lengths = np.array([len(examples['target'][i]) if i >= 0 else 0 for i in idx])
    np.testing.assert_array_equal(batch['target_mask'].sum(1), lengths)
  assert sorted(seen) == list(range(len(examples['source'])))
  assert source.example()['target'].shape[1] == 8
  with pytest.raises(ValueError, match='not one of the features'):
    _source(examples, fixed_length_features=('labels',))


def test_a_batch_is_a_function_of_seed_and_step():
  examples = _pairs()
  a, b = _source(examples), _source(examples)
  later = [b.batch(s) for s in (3 * a.steps_per_epoch + 5, 7, 2 * a.steps_per_epoch)]
  for step, batch in zip((3 * a.steps_per_epoch + 5, 7, 2 * a.steps_per_epoch), later):
    for key, value in a.batch(step).items():
      np.testing.assert_array_equal(value, batch[key])
  # Epochs differ: another order, and another number of batches is possible.
  assert not np.array_equal(a.indices(0), a.indices(a.steps_per_epoch))
  other = _source(examples, seed=8)
  assert not np.array_equal(a.indices(0), other.indices(0))


def test_two_processes_split_the_global_batch(monkeypatch):
  source = _source(_pairs())
  whole = source.batch(4)
  halves = batches_of_two_processes(source, 4, monkeypatch)
  for key, value in whole.items():
    np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), value)


def test_a_budget_too_small_for_the_longest_example_says_what_to_do():
  with pytest.raises(files.DataError, match='tokens_per_batch=60 .* at least 80'):
    TokenBudgetSource(_pairs(), 60, 0, count_feature='target', row_multiple=2)
