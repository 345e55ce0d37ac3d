"""Autoencoder and VAE modules: shapes, purity, validation, and that they learn.

Shape checks use jax.eval_shape (traces, never compiles): XLA:CPU compiles of parameter
initialisers take seconds each, and the shape tests would otherwise be most of the time.
"""

import functools
import math

import jax
import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax.models import VAE, Autoencoder
from genjax.models.layers import Conv2x2, Upsample2x, conv_kernel_init
from genjax.models.vae import INIT_LOG_SCALE, MAX_LOG_SCALE, MIN_LOG_SCALE, soft_clip
from genjax.tasks import losses

# Tiny hyperparameters keep every test to a fraction of a second.
TINY = dict(latent_dim=4, widths=(4, 8), hidden=(16,))
KEY = jax.random.key(0)


def images(shape, batch=2, seed=0):
  return jax.random.uniform(jax.random.key(seed), (batch,) + tuple(shape))


def shapes_of(model, x, method=None, **kwargs):
  """eval_shape of ``model.apply(init(x), x, method=method)``: no compilation."""
  variables = jax.eval_shape(model.init, KEY, x)
  apply = functools.partial(model.apply, method=method, **kwargs)
  return variables, jax.eval_shape(apply, variables, x)


@pytest.mark.parametrize('arch', ['mlp', 'conv'])
@pytest.mark.parametrize('shape', [(28, 28, 1), (32, 32, 3)])
def test_autoencoder_shapes(arch, shape):
  model = Autoencoder(image_shape=shape, arch=arch, **TINY)
  x = images(shape)
  variables, logits = shapes_of(model, x)
  assert logits.shape == x.shape and logits.dtype == jnp.float32
  assert shapes_of(model, x, method='encode')[1].shape == (2, 4)
  assert shapes_of(model, x, method='reconstruct')[1].shape == x.shape
  decode = functools.partial(model.apply, method='decode')
  assert jax.eval_shape(decode, variables, jnp.zeros((5, 4))).shape == (5,) + shape


@pytest.mark.parametrize('arch', ['mlp', 'conv'])
@pytest.mark.parametrize(
  'shape,likelihood',
  [((28, 28, 1), 'bernoulli'), ((32, 32, 3), 'gaussian'), ((32, 32, 3), 'discretized_gaussian')],
)
def test_vae_shapes(arch, shape, likelihood):
  model = VAE(image_shape=shape, arch=arch, likelihood=likelihood, **TINY)
  x = images(shape)
  variables, out = shapes_of(model, x, rngs={'sample': KEY})
  assert set(out) == {'out', 'mean', 'logvar', 'z'}
  for key in ('mean', 'logvar', 'z'):
    assert out[key].shape == (2, 4) and out[key].dtype == jnp.float32
  if likelihood == 'bernoulli':
    assert out['out'].shape == x.shape
  else:
    assert out['out']['mean'].shape == x.shape
    assert out['out']['log_scale'].shape == (3,)
  generate = functools.partial(model.apply, method='generate')
  assert jax.eval_shape(generate, variables, jnp.zeros((5, 4))).shape == (5,) + shape
  log_likelihood = jax.eval_shape(
    functools.partial(losses.decoder_log_likelihood, likelihood=likelihood), out['out'], x
  )
  assert log_likelihood.shape == (2,)


def test_bfloat16_computation_keeps_float32_params_and_outputs():
  model = VAE(arch='conv', dtype=jnp.bfloat16, **TINY)
  variables, out = shapes_of(model, images((28, 28, 1)), rngs={'sample': KEY})
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  assert all(o.dtype == jnp.float32 for o in jax.tree.leaves(out))


def test_config_lists_are_accepted():
  # Configs read back from config.json hold lists, and an int hidden means one layer.
  model = VAE(image_shape=[28, 28, 1], latent_dim=4, widths=[4, 8], hidden=16)
  assert shapes_of(model, images((28, 28, 1)), rngs={'sample': KEY})[1]['z'].shape == (2, 4)
  assert model == VAE(latent_dim=4, widths=(4, 8), hidden=(16,))  # and hashable
  assert hash(model) == hash(VAE(latent_dim=4, widths=(4, 8), hidden=(16,)))


def test_vae_is_pure_and_deterministic_in_the_rng():
  model = VAE(**TINY)
  x = images((28, 28, 1))
  variables = jax.jit(model.init)(KEY, x)  # one key is enough for init
  assert set(variables) == {'params'}  # no state collections
  before = jax.tree.map(np.array, variables)
  apply = jax.jit(model.apply)
  a = apply(variables, x, rngs={'sample': jax.random.key(1)})
  b = apply(variables, x, rngs={'sample': jax.random.key(1)})
  c = apply(variables, x, rngs={'sample': jax.random.key(2)})
  jax.tree.map(np.testing.assert_array_equal, a, b)
  jax.tree.map(np.testing.assert_array_equal, before, variables)
  np.testing.assert_array_equal(a['mean'], c['mean'])  # q(z|x) does not depend on the rng
  assert not np.allclose(a['z'], c['z'])


@pytest.mark.parametrize('cls', [Autoencoder, VAE])
def test_bad_configuration_fails_early(cls):
  with pytest.raises(ValueError, match="'mlp', 'conv'"):
    cls(arch='transformer')
  with pytest.raises(ValueError, match='divisible by 2\\*\\*len\\(widths\\) = 8'):
    cls(image_shape=(28, 28, 1), arch='conv', widths=(4, 8, 16))
  with pytest.raises(ValueError, match='height, width, channels'):
    cls(image_shape=(28, 28))
  with pytest.raises(ValueError, match='unknown activation'):
    jax.eval_shape(cls(activation='relu6').init, KEY, images((28, 28, 1)))
  with pytest.raises(ValueError, match='expected images of shape'):
    jax.eval_shape(cls(**TINY).init, KEY, images((32, 32, 3)))


def test_bad_likelihood_fails_early():
  with pytest.raises(ValueError, match='bernoulli'):
    VAE(likelihood='poisson')


def test_conv2x2_equals_flax_conv_with_the_same_parameters():
  x = jax.random.normal(KEY, (3, 7, 5, 6))
  layer = Conv2x2(8)
  variables = layer.init(jax.random.key(1), x)
  variables['params']['bias'] = jax.random.normal(jax.random.key(2), (8,))
  reference = nn.Conv(8, (2, 2), padding='SAME')
  assert jax.tree.map(jnp.shape, reference.init(KEY, x)) == jax.tree.map(jnp.shape, variables)
  np.testing.assert_allclose(layer.apply(variables, x), reference.apply(variables, x), atol=1e-5)


def test_upsample2x_is_a_4x4_stride2_transposed_conv():
  """The docstring's claim: T[a + 2 - 2 d] = K2[d, phase a] (per axis), cropped (2, 0)."""
  layer = Upsample2x(features=2)
  x = np.asarray(jax.random.normal(KEY, (1, 3, 3, 2)))
  variables = jax.jit(layer.init)(jax.random.key(1), x)
  y = np.asarray(jax.jit(layer.apply)(variables, x))
  k2 = np.asarray(variables['params']['Conv_0']['kernel']).reshape(2, 2, 2, 2, 2, 2)
  bias = np.asarray(variables['params']['Conv_0']['bias']).reshape(2, 2, 2)
  t = np.zeros((4, 4, 2, 2))  # [tap_h, tap_w, cin, cout]
  for di, dj, a, b in np.ndindex(2, 2, 2, 2):
    t[a + 2 - 2 * di, b + 2 - 2 * dj] = k2[di, dj, :, a, b, :]
  expected = np.tile(bias, (3, 3, 1))[None]
  for i, j, th, tw in np.ndindex(3, 3, 4, 4):  # scatter form of a transposed conv
    oh, ow = 2 * i + th - 2, 2 * j + tw - 2
    if 0 <= oh < 6 and 0 <= ow < 6:
      expected[0, oh, ow] += x[0, i, j] @ t[th, tw]
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def losses_before_and_after_training(loss_fn, params, steps=30, learning_rate=1e-2):
  """Runs ``steps`` Adam steps on ``loss_fn`` in one jitted scan; checks finite grads."""
  optimizer = optax.adam(learning_rate)

  def step(carry, _):
    params, opt_state = carry
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state)
    finite = jnp.all(jnp.array([jnp.isfinite(g).all() for g in jax.tree.leaves(grads)]))
    return (optax.apply_updates(params, updates), opt_state), (loss, finite)

  @jax.jit
  def train(params):
    (params, _), (trajectory, finite) = jax.lax.scan(
      step, (params, optimizer.init(params)), None, length=steps
    )
    return trajectory[0], loss_fn(params), finite.all()

  before, after, finite = train(params)
  assert bool(finite)
  return float(before), float(after)


@pytest.mark.parametrize('arch', ['mlp', 'conv'])
def test_vae_adam_lowers_negative_elbo(arch):
  model = VAE(arch=arch, **TINY)
  x = (images((28, 28, 1), batch=8) > 0.5).astype(jnp.float32)
  rng = jax.random.key(1)  # one fixed eps, so the loss is a deterministic function

  def loss_fn(p):
    return losses.negative_elbo_loss(model.apply(p, x, rngs={'sample': rng}), x)

  before, after = losses_before_and_after_training(loss_fn, jax.jit(model.init)(KEY, x))
  assert after < before - 10.0  # nats per image


@pytest.mark.parametrize('arch', ['mlp', 'conv'])
def test_autoencoder_adam_lowers_reconstruction_loss(arch):
  model = Autoencoder(arch=arch, image_shape=(32, 32, 3), **TINY)
  # A smooth shared image plus a little noise: learnable in a few steps, unlike noise.
  base = jax.image.resize(images((4, 4, 3), batch=1), (1, 32, 32, 3), 'linear')
  x = jnp.clip(base + 0.05 * images((32, 32, 3), batch=8, seed=1), 0.0, 1.0)

  def loss_fn(p):
    return jnp.mean(losses.reconstruction_loss(model.apply(p, x), x, kind='mse'))

  before, after = losses_before_and_after_training(loss_fn, jax.jit(model.init)(KEY, x))
  assert after < 0.6 * before


def test_conv_kernel_init_has_lecun_normal_scale():
  kernel = conv_kernel_init(KEY, (3, 3, 64, 128))
  assert kernel.shape == (3, 3, 64, 128)
  np.testing.assert_allclose(float(kernel.std()), 1 / math.sqrt(3 * 3 * 64), rtol=0.02)


def test_gaussian_decoder_log_scale_is_softly_bounded():
  raw = jnp.array([-100.0, INIT_LOG_SCALE, 100.0])
  bounded = soft_clip(raw, MIN_LOG_SCALE, MAX_LOG_SCALE)
  # Within the range up to softplus tails: log(1 + exp(-(max - min))) ~ 1e-3.
  assert bool((bounded >= MIN_LOG_SCALE - 2e-3).all() and (bounded <= MAX_LOG_SCALE).all())
  assert abs(float(bounded[1]) - INIT_LOG_SCALE) < 0.15  # ~identity inside the range
  # Unlike jnp.clip, a parameter just past a bound still gets a gradient back.
  beyond = jnp.array([MIN_LOG_SCALE - 2.0, MAX_LOG_SCALE + 2.0])
  slopes = jax.vmap(jax.grad(lambda r: soft_clip(r, MIN_LOG_SCALE, MAX_LOG_SCALE)))(beyond)
  assert bool((slopes > 0.05).all())
