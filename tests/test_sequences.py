"""Length-bucketed sequence batches: determinism, coverage, masks, shapes, processes, padding."""

import numpy as np
import pytest

from genjax.config import ConfigError
from genjax.data import files, sequences
from tests.conftest import batches_of_two_processes


def _lengths(n, seed=0):
  """Sentence-like lengths: log-normal around 18 tokens, 5..60; targets ~ sources."""
  rng = np.random.default_rng(seed)
  source = np.clip(np.round(rng.lognormal(np.log(18), 0.5, n)), 5, 60).astype(int)
  target = np.clip(np.round(source * rng.lognormal(0, 0.15, n)), 5, 60).astype(int)
  return source, target


def _examples(n=1000, seed=0):
  """Token i of example e is e * 100 + i + 1 (never 0), so rows can be traced back."""
  source, target = _lengths(n, seed)
  return {
    'source': [np.arange(n) + e * 100 + 1 for e, n in enumerate(source)],
    'target': [np.arange(n) + e * 100 + 1 for e, n in enumerate(target)],
  }


def _example_of(tokens):
  return (tokens[:, 0] - 1) // 100


def test_batches_are_deterministic_and_seeded():
  examples = _examples()
  source = sequences.SequenceSource(examples, 32, seed=3)
  b = source.batch(40)
  for again in (source.batch(40), sequences.SequenceSource(examples, 32, seed=3).batch(40)):
    assert sorted(again) == sorted(b)
    for k in b:
      np.testing.assert_array_equal(again[k], b[k])
  assert not np.array_equal(source.indices(41), source.indices(40))
  assert not np.array_equal(
    sequences.SequenceSource(examples, 32, seed=4).indices(40), source.indices(40)
  )
  # Reading steps out of order (a resume, then another epoch) gives the same batches.
  first = [source.indices(s) for s in (5, 40, 5)]
  np.testing.assert_array_equal(first[0], first[2])


def test_each_epoch_uses_every_example_at_most_once_and_drops_the_partial_batch():
  source = sequences.SequenceSource(_examples(1000), 32, seed=0, pool_batches=4)
  assert source.steps_per_epoch == 1000 // 32
  for epoch in (0, 1):
    steps = range(epoch * source.steps_per_epoch, (epoch + 1) * source.steps_per_epoch)
    seen = np.concatenate([source.indices(s) for s in steps])
    assert len(seen) == len(set(seen)) == 31 * 32
    # The rows are the examples their indices say.
    b = source.batch(steps[3])
    np.testing.assert_array_equal(_example_of(b['source']), source.indices(steps[3]))
  # The dropped examples differ between epochs (random, not always the longest).
  dropped = [set(range(1000)) - set(source.epoch_batches(e).ravel()) for e in (0, 1)]
  assert dropped[0] != dropped[1]
  with pytest.raises(ConfigError, match='larger than'):
    sequences.SequenceSource(_examples(10), 32, seed=0)


def test_masks_match_lengths_and_shapes_are_bucket_multiples():
  examples = _examples()
  source = sequences.SequenceSource(examples, 32, seed=0, length_multiple=8)
  widths = set()
  for step in range(source.steps_per_epoch):
    b, idx = source.batch(step), source.indices(step)
    for name in ('source', 'target'):
      tokens, mask = b[name], b[name + '_mask']
      assert tokens.dtype == np.int32 and mask.dtype == bool
      assert tokens.shape == mask.shape and tokens.shape[1] % 8 == 0
      lengths = np.array([len(examples[name][i]) for i in idx])
      np.testing.assert_array_equal(mask.sum(1), lengths)
      assert tokens.shape[1] - 8 < lengths.max() <= tokens.shape[1]  # the smallest bucket
      np.testing.assert_array_equal(mask, tokens != 0)  # right-padded with 0
      np.testing.assert_array_equal(tokens[0, : lengths[0]], examples[name][idx[0]])
      widths.add(tokens.shape[1])
    assert b['index'].tolist() == list(range(32)) and b['index'].dtype == np.int32
  example = source.example()
  longest = max(len(s) for s in examples['source'])
  assert example['source'].shape == (32, -(-longest // 8) * 8) == (32, max(widths))
  assert not example['source'].any() and example['source_mask'].all()
  assert example['index'].tolist() == list(range(32))


def test_process_halves_make_the_global_batch_and_agree_on_lengths(monkeypatch):
  source = sequences.SequenceSource(_examples(), 8, seed=0)
  whole = source.batch(7)
  halves = batches_of_two_processes(source, 7, monkeypatch)
  for k in ('source', 'source_mask', 'target', 'target_mask', 'index'):
    np.testing.assert_array_equal(np.concatenate([h[k] for h in halves]), whole[k])
  assert halves[1]['index'].tolist() == [4, 5, 6, 7]
  # The width is the global batch's: each half alone might be shorter.
  assert halves[0]['source'].shape == halves[1]['source'].shape == (4, whole['source'].shape[1])


def _mean_share(source):
  return np.mean([sequences.padding_share(source.batch(s)) for s in range(source.steps_per_epoch)])


def test_bucketing_keeps_padding_small_on_sentence_lengths():
  # Measured (10,000 examples, batch 64, seed 0): random batches 0.647 (length_multiple=8)
  # and 0.623 (1); bucketed 0.209 (8) and 0.069 (1). At 8, most of what is left is the
  # rounding itself: 0.146 of the positions even if each sequence had its own width.
  examples = _examples(10_000)
  for multiple, bound, factor in ((8, 0.25, 2.5), (1, 0.10, 6)):
    bucketed = _mean_share(sequences.SequenceSource(examples, 64, 0, length_multiple=multiple))
    unbucketed = _mean_share(
      sequences.SequenceSource(examples, 64, 0, length_multiple=multiple, pool_batches=1)
    )
    assert bucketed < bound, (multiple, bucketed)
    assert bucketed < unbucketed / factor, (multiple, bucketed, unbucketed)
    assert unbucketed > 0.55, (multiple, unbucketed)


def test_padding_share_counts_masked_positions():
  batch = {
    'a': np.zeros((2, 4)),
    'a_mask': np.array([[1, 1, 1, 0], [1, 0, 0, 0]], bool),
    'b': np.zeros((2, 2)),
    'b_mask': np.ones((2, 2), bool),
    'index': np.arange(2),
  }
  assert sequences.padding_share(batch) == pytest.approx(4 / 12)


def test_stack_padded_pads_every_step_to_the_groups_longest():
  source = sequences.SequenceSource(_examples(), 16, seed=0, length_multiple=4)
  by_width = {source.batch(s)['source'].shape[1]: s for s in range(source.steps_per_epoch)}
  assert len(by_width) >= 2
  group = [source.batch(s) for s in sorted(by_width.values())[:3]]
  stacked = sequences.stack_padded(group)
  width = max(b['source'].shape[1] for b in group)
  assert stacked['source'].shape == (len(group), 16, width)
  assert stacked['source'].dtype == np.int32 and stacked['source_mask'].dtype == bool
  assert stacked['index'].shape == (len(group), 16)
  for i, b in enumerate(group):
    w = b['source'].shape[1]
    np.testing.assert_array_equal(stacked['source'][i, :, :w], b['source'])
    np.testing.assert_array_equal(stacked['source_mask'][i, :, :w], b['source_mask'])
    assert not stacked['source'][i, :, w:].any() and not stacked['source_mask'][i, :, w:].any()
  with pytest.raises(ValueError, match='different keys'):
    sequences.stack_padded([group[0], {'source': group[1]['source']}])


def test_padded_arrays_keep_the_order_and_pad_to_the_longest():
  examples = {
    'source': [np.array([5, 6, 7]), np.array([8]), np.array([], np.int64)],
    'target': [np.array([1] * 9), np.array([2, 3]), np.array([4])],
  }
  arrays = sequences.padded_arrays(examples, length_multiple=4)
  np.testing.assert_array_equal(arrays['source'], [[5, 6, 7, 0], [8, 0, 0, 0], [0, 0, 0, 0]])
  np.testing.assert_array_equal(arrays['source_mask'].sum(1), [3, 1, 0])
  assert arrays['target'].shape == (3, 12) and arrays['target'].dtype == np.int32
  np.testing.assert_array_equal(arrays['target_mask'].sum(1), [9, 2, 1])
  assert 'index' not in arrays  # eval batches add their own


def test_refuses_too_long_sequences_and_malformed_examples():
  examples = _examples(200)
  longest = max(len(s) for name in examples for s in examples[name])
  too_long = sum(max(len(s), len(t)) > 40 for s, t in zip(examples['source'], examples['target']))
  assert too_long > 1
  message = rf'{too_long} of the 200 .* max_length=40 .*{longest}.*Raise max_length'
  with pytest.raises(files.DataError, match=message):
    sequences.SequenceSource(examples, 8, seed=0, max_length=40)
  sequences.SequenceSource(examples, 8, seed=0, max_length=longest)  # at the limit is fine
  with pytest.raises(ValueError, match='different numbers'):
    sequences.SequenceSource({'a': [np.arange(3)], 'b': []}, 1, seed=0)
  with pytest.raises(files.DataError, match='1-D array of integer'):
    sequences.SequenceSource({'a': [np.zeros((2, 2), np.int32)]}, 1, seed=0)
  with pytest.raises(ValueError, match='clash'):
    sequences.SequenceSource({'a': [np.arange(2)], 'a_mask': [np.arange(2)]}, 1, seed=0)
