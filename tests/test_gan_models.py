"""DCGAN Generator and Discriminator: shapes, range, batch norm, conditioning, validation,
and batch norm under shard_map == one device on the full batch."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec as P

from genjax.models.gan import Discriminator, Generator
from tests.trees import assert_trees_close

# Tiny widths keep every test to a fraction of a second.
G_TINY = dict(latent_dim=4, widths=(8, 4))
D_TINY = dict(widths=(4, 8))
KEY = jax.random.key(0)


def latents(batch=4, dim=4, seed=1):
  return jax.random.normal(jax.random.key(seed), (batch, dim))


def images(shape, batch=4, seed=2):
  return jax.random.uniform(jax.random.key(seed), (batch,) + tuple(shape))


@pytest.mark.parametrize('shape', [(28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize('num_classes', [0, 3])
def test_generator_shapes_dtype_and_range(shape, num_classes):
  model = Generator(image_shape=shape, num_classes=num_classes, **G_TINY)
  z = latents()
  labels = jnp.array([0, 1, 2, 0]) if num_classes else None
  variables = model.init(KEY, z, labels)
  assert set(variables) == {'params', 'batch_stats'}
  x, updates = model.apply(variables, z, labels, mutable=['batch_stats'])
  assert x.shape == (4,) + shape and x.dtype == jnp.float32
  assert set(updates) == {'batch_stats'}
  assert bool(jnp.all((x >= 0) & (x <= 1)))
  assert float(jnp.std(x)) > 0


@pytest.mark.parametrize('shape', [(28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize(
  'num_classes,conditioning', [(0, 'projection'), (3, 'projection'), (3, 'concat')]
)
def test_discriminator_shapes_and_dtype(shape, num_classes, conditioning):
  model = Discriminator(
    image_shape=shape, num_classes=num_classes, conditioning=conditioning, **D_TINY
  )
  x = images(shape)
  labels = jnp.array([0, 1, 2, 0]) if num_classes else None
  variables = model.init(KEY, x, labels)
  assert set(variables) == {'params'}
  logits = model.apply(variables, x, labels)
  assert logits.shape == (4,) and logits.dtype == jnp.float32
  assert bool(jnp.all(jnp.isfinite(logits)))


def test_discriminator_may_go_deeper_than_the_size_halves_evenly():
  model = Discriminator(widths=(4, 8, 16))  # 28 -> 14 -> 7 -> 4
  x = images((28, 28, 1))
  variables = model.init(KEY, x)
  assert variables['params']['Dense_0']['kernel'].shape == (4 * 4 * 16, 1)
  assert model.apply(variables, x).shape == (4,)


def test_q_head_predicts_codes_from_the_shared_features():
  model = Discriminator(num_codes=5, **D_TINY)
  x = images((28, 28, 1))
  variables = model.init(KEY, x)
  assert {'q_hidden', 'q_codes'} <= set(variables['params'])
  logits, code_logits = model.apply(variables, x, return_code_logits=True)
  assert logits.shape == (4,) and code_logits.shape == (4, 5)
  assert code_logits.dtype == jnp.float32
  # The plain call is the same discriminator: the Q head does not touch the logit.
  np.testing.assert_array_equal(model.apply(variables, x), logits)
  with pytest.raises(ValueError, match='num_codes > 0'):
    plain = Discriminator(**D_TINY)
    plain.apply(plain.init(KEY, x), x, return_code_logits=True)


@pytest.mark.parametrize('norm', ['layer', 'none'])
def test_generator_without_batch_norm_has_no_batch_stats(norm):
  model = Generator(norm=norm, **G_TINY)
  z = latents()
  variables = model.init(KEY, z)
  assert set(variables) == {'params'}
  x = model.apply(variables, z)
  assert x.shape == (4, 28, 28, 1)
  np.testing.assert_array_equal(x, model.apply(variables, z, train=False))


def test_bfloat16_computation_keeps_float32_params_and_outputs():
  z, x = latents(), images((28, 28, 1))
  g = Generator(dtype=jnp.bfloat16, **G_TINY)
  d = Discriminator(dtype=jnp.bfloat16, num_classes=3, **D_TINY)
  labels = jnp.array([0, 1, 2, 0])
  g_vars = jax.eval_shape(g.init, KEY, z)
  d_vars = jax.eval_shape(d.init, KEY, x, labels)
  for leaf in jax.tree.leaves((g_vars, d_vars)):
    assert leaf.dtype == jnp.float32
  out = jax.eval_shape(functools.partial(g.apply, mutable=['batch_stats']), g_vars, z)[0]
  assert out.dtype == jnp.float32
  assert jax.eval_shape(d.apply, d_vars, x, labels).dtype == jnp.float32


def test_batch_norm_train_updates_stats_and_eval_is_deterministic():
  model = Generator(**G_TINY)
  z = latents()
  variables = model.init(KEY, z, train=False)
  x_train, updates = model.apply(variables, z, mutable=['batch_stats'])
  before = jax.tree.leaves(variables['batch_stats'])
  after = jax.tree.leaves(updates['batch_stats'])
  assert len(before) == len(after) > 0
  assert any(not np.allclose(a, b) for a, b in zip(before, after))
  x_eval = model.apply(variables, z, train=False)
  np.testing.assert_array_equal(x_eval, model.apply(variables, z, train=False))
  # Batch statistics (train) differ from the initial running ones (mean 0, var 1).
  assert not np.allclose(x_train, x_eval)
  # Eval mode treats examples independently: one example alone gives the same image.
  np.testing.assert_allclose(model.apply(variables, z[:1], train=False), x_eval[:1], atol=1e-6)


def test_conditional_generator_depends_on_labels():
  model = Generator(num_classes=3, norm='none', **G_TINY)
  z = jnp.tile(latents(batch=1), (3, 1))
  labels = jnp.arange(3)
  variables = model.init(KEY, z, labels)
  x = model.apply(variables, z, labels)
  assert not np.allclose(x[0], x[1]) and not np.allclose(x[1], x[2])


@pytest.mark.parametrize('conditioning', ['projection', 'concat'])
def test_conditional_discriminator_depends_on_labels(conditioning):
  model = Discriminator(num_classes=3, conditioning=conditioning, **D_TINY)
  x = jnp.tile(images((28, 28, 1), batch=1), (3, 1, 1, 1))
  labels = jnp.arange(3)
  variables = model.init(KEY, x, labels)
  logits = model.apply(variables, x, labels)
  assert len(set(np.round(np.asarray(logits), 6).tolist())) == 3


def test_projection_discriminator_adds_embedding_dot_features():
  model = Discriminator(num_classes=3, **D_TINY)
  x = images((28, 28, 1), batch=2)
  labels = jnp.array([2, 0])
  variables = model.init(KEY, x, labels)
  params = variables['params']
  logits, state = model.apply(variables, x, labels, capture_intermediates=True)
  # phi(x): the last conv's output after its leaky ReLU, flattened.
  last_conv = state['intermediates'][f'Conv_{len(D_TINY["widths"]) - 1}']['__call__'][0]
  phi = jax.nn.leaky_relu(last_conv, 0.2).reshape((2, -1))
  zeroed = dict(params)
  zeroed['class_embed'] = {'embedding': jnp.zeros_like(params['class_embed']['embedding'])}
  base = model.apply({'params': zeroed}, x, labels)  # the unconditional logit
  emb = params['class_embed']['embedding'][labels]
  np.testing.assert_allclose(logits - base, jnp.sum(emb * phi, axis=-1), rtol=1e-4, atol=1e-5)


def test_lists_from_json_configs_become_tuples():
  g = Generator(image_shape=[32, 32, 3], widths=[8, 4], latent_dim=4)
  d = Discriminator(image_shape=[32, 32, 3], widths=[4, 8])
  assert g.image_shape == (32, 32, 3) and g.widths == (8, 4)
  assert d.image_shape == (32, 32, 3) and d.widths == (4, 8)
  hash(g), hash(d)  # jit-static


@pytest.mark.parametrize(
  'make,message',
  [
    (lambda: Generator(image_shape=(30, 30, 1), widths=(8, 4)), 'not divisible'),
    (lambda: Generator(norm='group'), "'batch', 'layer', 'none'"),
    (lambda: Discriminator(conditioning='acgan'), "'projection', 'concat'"),
    (lambda: Generator(image_shape=(28, 28)), 'height, width, channels'),
    (lambda: Generator(widths=()), 'at least one'),
    (lambda: Discriminator(num_classes=-1), 'num_classes'),
  ],
)
def test_bad_configs_fail_at_construction(make, message):
  with pytest.raises(ValueError, match=message):
    make()


def test_bad_inputs_fail_with_clear_messages():
  g = Generator(num_classes=3, norm='none', **G_TINY)
  with pytest.raises(ValueError, match='labels'):
    g.init(KEY, latents())
  with pytest.raises(ValueError, match='latents of shape'):
    g.init(KEY, latents(dim=5), jnp.zeros(4, jnp.int32))
  d = Discriminator(**D_TINY)
  with pytest.raises(ValueError, match='unconditional'):
    d.init(KEY, images((28, 28, 1)), jnp.zeros(4, jnp.int32))
  with pytest.raises(ValueError, match='expected images'):
    d.init(KEY, images((32, 32, 3)))


def test_batch_norm_under_shard_map_matches_one_device():
  devices = jax.devices()[:4]
  assert len(devices) == 4, 'tests/conftest.py sets 4 fake CPU devices'
  mesh = Mesh(np.asarray(devices), ('data',))
  single = Generator(**G_TINY)
  sharded = Generator(batch_stats_axis='data', **G_TINY)
  z = latents(batch=8)
  variables = single.init(KEY, z)
  # Move the running stats off their (0, 1) init so the update is a real test.
  variables = {
    'params': variables['params'],
    'batch_stats': jax.tree.map(lambda v: v + 0.3, variables['batch_stats']),
  }

  def apply(model, variables, z):
    return model.apply(variables, z, mutable=['batch_stats'])

  x_one, upd_one = jax.jit(functools.partial(apply, single))(variables, z)
  x_many, upd_many = jax.jit(
    jax.shard_map(
      functools.partial(apply, sharded),
      mesh=mesh,
      in_specs=(P(), P('data')),
      out_specs=(P('data'), P()),
    )
  )(variables, z)
  np.testing.assert_allclose(x_many, x_one, atol=1e-5)
  assert_trees_close(upd_many, upd_one, atol=1e-5)
  # Without the axis, each device normalises its own 2 examples: a different answer.
  x_local, _ = jax.jit(
    jax.shard_map(
      functools.partial(apply, single),
      mesh=mesh,
      in_specs=(P(), P('data')),
      out_specs=(P('data'), P('data')),
    )
  )(variables, z)
  assert not np.allclose(x_local, x_one, atol=1e-3)
