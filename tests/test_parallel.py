"""'pmap' (shard_map) == 'jit' == 'fsdp' over 4 devices, on a data axis alone or beside a
model axis, == one device, for the same global batch; where 'fsdp' puts each array."""

import flax
import flax.linen as nn
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from genjax import tasks
from genjax.config import ConfigError
from genjax.data import datasets, pipeline
from genjax.run import loop, restore
from genjax.step import parallel, sharding, train_step
from tests import tiny


def step_metrics(config, strategy, devices, steps=20, names=('loss',), data=None, mesh=''):
  """[steps, len(names)] of the named step metrics, training `config` under `strategy`
  (on `data`, loaded from `config.data` unless given) on `devices`, laid out as `mesh`
  (config.parallel.mesh) says."""
  return train_steps(config, strategy, devices, steps, names, data, mesh)[1]


def train_steps(config, strategy, devices, steps=20, names=('loss',), data=None, mesh=''):
  """(the state after `steps`, [steps, len(names)] metrics): `step_metrics`, with the state."""
  mesh = parallel.mesh_of(mesh, devices)
  data = datasets.load(config.data) if data is None else data
  config = config.copy_and_resolve_references()
  config.parallel.strategy = strategy
  config.parallel.fsdp_min_size = 0  # tiny models: split every array that divides
  task = tasks.build(config, data.spec, restore.RUNS)
  tx = task.make_optimizer(config)
  example = data.train_source(config.data.batch_size, config.seed).example()
  state = loop.init_state(task, config, tx, example, mesh)
  layout = jax.tree.map(lambda x: x.sharding, state)
  step = parallel.compile_step(
    train_step.train_step(task, config, tx), mesh, strategy, state_sharding=layout
  )
  out = []
  with pipeline.Prefetcher(
    data.train_source(config.data.batch_size, config.seed), parallel.batch_sharding(mesh)
  ) as batches:
    for _ in range(steps):
      state, metrics = step(state, next(batches))
      out.append([metrics[name] for name in names])
  return state, np.asarray(jax.device_get(out))


def _losses(config, strategy, devices, data, steps=20, mesh=''):
  """[steps, 1 + k]: the loss, then the gradient norms (k = 1, or 2 for a GAN's two nets).

  Gradient norms catch a pmap step that sums device gradients instead of averaging
  them: Adam hides a constant factor in the losses, clipping and SGD do not.
  """
  norms = ('d_grad_norm', 'g_grad_norm') if config.task == 'gan' else ('grad_norm',)
  return step_metrics(config, strategy, devices, steps, ('loss',) + norms, data, mesh)


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
  """'jit' runs on a data:2,model:2 mesh: the Transformer families split their weights over
  'model' by their logical names, every other family keeps whole weights on both halves
  of it, as a researcher's mesh flag gives them; 'pmap' and 'fsdp' run on data:4, and
  'fsdp' on data:2,model:2 too for the families whose weights split over 'model' as well
  as over 'data'."""
  config = make_config(steps=20)
  assert jax.device_count() == 4
  data = datasets.load(config.data)  # once: the strategies differ in the step only
  one = _losses(config, 'jit', jax.devices()[:1], data)
  jit = _losses(config, 'jit', jax.devices(), data, mesh='data:2,model:2')
  pmap = _losses(config, 'pmap', jax.devices(), data)
  fsdp = _losses(config, 'fsdp', jax.devices(), data)
  assert np.all(np.isfinite(one))
  if config.task != 'gan':  # a GAN's summed losses need not fall
    assert one[-1, 0] < one[0, 0]
  np.testing.assert_allclose(jit, one, rtol=1e-5)
  np.testing.assert_allclose(pmap, one, rtol=1e-5)
  # fsdp reduce-scatters the gradients, summing in another order than jit's all-reduce;
  # a GAN's two-player steps amplify that rounding most (its generator's gradient norm
  # at step 18 of 20: 1.8e-5 relative), so its bound is 2e-5 and every other's 1e-5.
  np.testing.assert_allclose(fsdp, one, rtol=2e-5 if config.task == 'gan' else 1e-5)
  if make_config in SPLIT_OVER_MODEL:
    split = _losses(config, 'fsdp', jax.devices(), data, mesh='data:2,model:2')
    np.testing.assert_allclose(split, one, rtol=1e-5)


# A Transformer family of each model (chat and text_classifier share their layers with
# lm and bert), whose weights split over 'model' by their logical names.
SPLIT_OVER_MODEL = (tiny.lm, tiny.seq2seq, tiny.bert, tiny.vit)


def test_each_weight_is_split_as_its_logical_names_say():
  config = tiny.lm(steps=1)
  config.parallel.fsdp_min_size = 0
  data = datasets.load(config.data)
  task = tasks.build(config, data.spec, restore.RUNS)
  tx = task.make_optimizer(config)
  example = data.train_source(config.data.batch_size, config.seed).example()
  mesh = parallel.mesh_of('data:2,model:2')
  state = loop.init_state(task, config, tx, example, mesh)
  boxed = task.init(jax.random.PRNGKey(0), example)[0]['params']
  names = {
    path: tuple(box.names)
    for path, box in flax.traverse_util.flatten_dict(
      boxed, is_leaf=lambda _, x: isinstance(x, nn.LogicallyPartitioned)
    ).items()
    if isinstance(box, nn.LogicallyPartitioned)
  }
  assert {'heads', 'mlp', 'vocab', 'embed'} <= {n for axes in names.values() for n in axes}
  rules = dict(config.parallel.logical_axis_rules)
  params = flax.traverse_util.flatten_dict(state.params['params'])
  for path, leaf in params.items():
    spec = tuple(leaf.sharding.spec) + (None,) * (leaf.ndim - len(leaf.sharding.spec))
    for size, name, where in zip(leaf.shape, names.get(path, (None,) * leaf.ndim), spec):
      target = rules.get(name)
      if target == 'model' and size % 2 == 0:
        assert where == 'model', (path, name, leaf.sharding.spec)
      else:
        assert where != 'model', (path, name, leaf.sharding.spec)
  # The optimizer's moments are laid out as their parameters.
  mu = jax.tree.leaves(state.opt_state)
  assert any(
    getattr(x, 'sharding', None) is not None and 'model' in tuple(x.sharding.spec) for x in mu
  )


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


def test_fsdp_splits_each_large_array_over_the_data_axis():
  assert sharding.fsdp_spec((64, 128), 4, 0) == P(None, 'data')  # the largest axis
  assert sharding.fsdp_spec((128, 128), 4, 0) == P('data')  # a tie: the first
  assert sharding.fsdp_spec((6, 8, 3), 4, 0) == P(None, 'data')  # 8 divides, 6 not
  assert sharding.fsdp_spec((6, 3), 4, 0) == P()  # nothing divides: whole
  assert sharding.fsdp_spec((64, 128), 4, 64 * 128 + 1) == P()  # under the minimum
  assert sharding.fsdp_spec((64, 128), 1, 0) == P()  # one device


def test_fsdp_state_holds_a_quarter_of_jits_on_four_devices():
  """The layout of a real state (the default-size shakespeare_char, shapes only): every
  array over the minimum split as fsdp_spec says; a device's share of the parameters and
  optimizer state at most 30% of the whole state 'jit' keeps on each."""
  from experiments import shakespeare_char  # pylint: disable=import-outside-toplevel

  config = shakespeare_char.get_config()
  mesh = parallel.make_mesh()
  spec = datasets.load(config.data).spec
  shapes = restore.abstract_state(tasks.build(config, spec, restore.RUNS), config, spec)
  whole = sharding.state_sharding(shapes, mesh, 'jit')
  split = sharding.state_sharding(shapes, mesh, 'fsdp', config.parallel.fsdp_min_size)
  for leaf, where in zip(jax.tree.leaves(shapes), jax.tree.leaves(split)):
    assert where.spec == sharding.fsdp_spec(leaf.shape, 4, config.parallel.fsdp_min_size)
  on_each = lambda layout: sharding.bytes_per_device(
    jax.tree.map(lambda s, w: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=w), shapes, layout)
  )
  assert on_each(split) <= 0.30 * on_each(whole)
