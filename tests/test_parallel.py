"""'pmap' (shard_map) == 'jit' over 4 devices == one device, for the same global batch."""

import jax
import numpy as np
import pytest

from genjax import tasks
from genjax.config import ConfigError
from genjax.data import datasets, pipeline
from genjax.run import loop, restore
from genjax.step import parallel, train_step
from tests import tiny


def step_metrics(config, strategy, devices, steps=20, names=('loss',), data=None):
  """[steps, len(names)] of the named step metrics, training `config` under `strategy`
  (on `data`, loaded from `config.data` unless given)."""
  mesh = parallel.make_mesh(devices)
  data = datasets.load(config.data) if data is None else data
  task = tasks.build(config, data.spec, restore.RUNS)
  tx = task.make_optimizer(config)
  example = data.train_source(config.data.batch_size, config.seed).example()
  state = loop.init_state(task, config, tx, example, mesh)
  step = parallel.compile_step(train_step.train_step(task, config, tx), mesh, strategy)
  out = []
  with pipeline.Prefetcher(
    data.train_source(config.data.batch_size, config.seed), parallel.batch_sharding(mesh)
  ) as batches:
    for _ in range(steps):
      state, metrics = step(state, next(batches))
      out.append([metrics[name] for name in names])
  return np.asarray(jax.device_get(out))


def _losses(config, strategy, devices, data, steps=20):
  """[steps, 1 + k]: the loss, then the gradient norms (k = 1, or 2 for a GAN's two nets).

  Gradient norms catch a pmap step that sums device gradients instead of averaging
  them: Adam hides a constant factor in the losses, clipping and SGD do not.
  """
  norms = ('d_grad_norm', 'g_grad_norm') if config.task == 'gan' else ('grad_norm',)
  return step_metrics(config, strategy, devices, steps, ('loss',) + norms, data)


@pytest.mark.parametrize(
  'make_config',
  [
    tiny.vae,
    tiny.ae,
    tiny.gan,
    tiny.info_gan,
    tiny.self_conditioned_gan,
    tiny.diffusion,
    tiny.classifier,
    tiny.vit,
    tiny.lm,
    tiny.seq2seq,
    tiny.bert,
    tiny.text_classifier,
    tiny.chat,
    tiny.piano_roll,
    tiny.voices,
  ],
  ids=[
    'vae',
    'denoising_ae',
    'gan',
    'info_gan',
    'self_conditioned_gan',
    'diffusion_conditional_with_dropout',
    'classifier',
    'vit_with_augmentation',
    'lm_with_dropout',
    'seq2seq_token_budget_with_dropout',
    'bert_mlm',
    'text_classifier',
    'chat',
    'piano_roll_nade_transposed',
    'voices_transposed',
  ],
)
def test_strategies_agree_with_one_device(make_config):
  config = make_config(steps=20)
  assert jax.device_count() == 4
  data = datasets.load(config.data)  # once: the strategies differ in the step only
  one = _losses(config, 'jit', jax.devices()[:1], data)
  jit = _losses(config, 'jit', jax.devices(), data)
  pmap = _losses(config, 'pmap', jax.devices(), data)
  assert np.all(np.isfinite(one))
  if config.task != 'gan':  # a GAN's summed losses need not fall
    assert one[-1, 0] < one[0, 0]
  np.testing.assert_allclose(jit, one, rtol=1e-5)
  np.testing.assert_allclose(pmap, one, rtol=1e-5)


def test_indivisible_batch_is_a_clear_error():
  mesh = parallel.make_mesh()
  with pytest.raises(ConfigError, match='not divisible by the 4 devices'):
    parallel.check_batch_size(30, mesh)


def test_spread_batch_splits_rows_that_divide_and_leaves_the_rest():
  double = jax.jit(lambda x: 2.0 * parallel.spread_batch(x))
  x = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)
  out = double(x)
  assert out.sharding.device_set == set(jax.local_devices()) and len(jax.local_devices()) == 4
  np.testing.assert_array_equal(out, 2.0 * x)
  odd = double(x[:6])  # 6 rows do not split over 4 devices: one device, same numbers
  assert len(odd.sharding.device_set) == 1
  np.testing.assert_array_equal(odd, 2.0 * x[:6])
  weights = parallel.replicate_locally(jax.device_put(np.ones(3), jax.devices()[0]))
  assert weights.sharding.is_fully_replicated and len(weights.sharding.device_set) == 4
