"""The batch pipeline: deterministic order, resume from any step, placement, padding."""

import jax
import numpy as np
import pytest

from genjax.config import ConfigError
from genjax.data import pipeline
from genjax.step import parallel


def _arrays(n=100):
  return {
    'image': np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1),
    'label': np.arange(n, dtype=np.int32),
  }


def test_epoch_is_a_permutation_and_seeded():
  order = pipeline.EpochOrder(100, 10, seed=3)
  seen = np.concatenate([order.indices(s) for s in range(10)])
  assert sorted(seen) == list(range(100))
  again = pipeline.EpochOrder(100, 10, seed=3)
  assert np.array_equal(again.indices(7), order.indices(7))
  other = pipeline.EpochOrder(100, 10, seed=4)
  assert not np.array_equal(other.indices(0), order.indices(0))
  # A new epoch reshuffles.
  assert not np.array_equal(order.indices(10), order.indices(0))


def test_drops_incomplete_last_batch_and_rejects_huge_batches():
  assert pipeline.steps_per_epoch(105, 10) == 10
  with pytest.raises(ConfigError, match='larger than'):
    pipeline.steps_per_epoch(5, 10)


def test_resume_replays_the_same_batches():
  mesh = parallel.make_mesh()
  sharding = parallel.batch_sharding(mesh)
  with pipeline.Prefetcher(pipeline.ArraySource(_arrays(), 8, seed=0), sharding) as full:
    uninterrupted = [np.asarray(next(full)['label']) for _ in range(30)]
  with pipeline.Prefetcher(
    pipeline.ArraySource(_arrays(), 8, seed=0), sharding, start_step=17
  ) as resumed:
    tail = [np.asarray(next(resumed)['label']) for _ in range(13)]
  for a, b in zip(uninterrupted[17:], tail):
    np.testing.assert_array_equal(a, b)


def test_batches_are_sharded_over_all_devices():
  mesh = parallel.make_mesh()
  with pipeline.Prefetcher(
    pipeline.ArraySource(_arrays(), 8, seed=0), parallel.batch_sharding(mesh)
  ) as it:
    batch = next(it)
  assert batch['image'].shape == (8, 1, 1, 1)
  assert len(batch['image'].sharding.device_set) == jax.device_count()
  np.testing.assert_array_equal(np.asarray(batch['index']), np.arange(8))


def test_grouped_batches_stack_consecutive_steps_and_end():
  mesh = parallel.make_mesh()
  source = pipeline.ArraySource(_arrays(), 8, seed=0)
  with pipeline.Prefetcher(source, parallel.batch_sharding(mesh)) as single:
    one_by_one = [np.asarray(next(single)['label']) for _ in range(7)]
  with pipeline.Prefetcher(
    source, parallel.stacked_batch_sharding(mesh), start_step=2, group_sizes=[3, 2]
  ) as grouped:
    groups = list(grouped)  # the stream ends after the last group
    assert grouped.step == 7
  assert [g['label'].shape for g in groups] == [(3, 8), (2, 8)]
  assert len(groups[0]['label'].sharding.device_set) == jax.device_count()
  np.testing.assert_array_equal(
    np.concatenate([np.asarray(g['label']) for g in groups]), np.stack(one_by_one[2:])
  )


def test_errors_in_the_producer_reach_the_consumer():
  mesh = parallel.make_mesh()
  bad = {'image': np.zeros((10, 3)), 'label': np.zeros((10,))}
  with pipeline.Prefetcher(
    pipeline.ArraySource(bad, 6, seed=0), parallel.batch_sharding(mesh)
  ) as it:
    with pytest.raises(ValueError):  # 6 rows do not split over 4 devices
      next(it)


def test_eval_batches_pad_and_mask():
  mesh = parallel.make_mesh()
  batches = list(pipeline.eval_batches(_arrays(10), 4, parallel.batch_sharding(mesh)))
  assert len(batches) == 3
  masks = np.concatenate([np.asarray(b['mask']) for b in batches])
  assert masks.sum() == 10
  labels = np.concatenate([np.asarray(b['label']) for b in batches])[masks]
  np.testing.assert_array_equal(labels, np.arange(10))
