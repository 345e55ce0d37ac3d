"""GAN losses, penalties, accuracy and EMA against closed forms; a discriminator learns."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax.models.gan import Discriminator
from genjax.tasks import gan_losses
from tests.trees import assert_trees_equal

REAL = np.array([2.0, -1.0, 0.5, 30.0], np.float32)
FAKE = np.array([-3.0, 0.25, 1.0, -40.0], np.float32)


def softplus(x):
  return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)  # stable in float64


def test_non_saturating_losses_match_cross_entropy():
  real, fake = REAL.astype(np.float64), FAKE.astype(np.float64)
  sigmoid = lambda x: 1 / (1 + np.exp(-x))
  expected_d = -np.mean(np.log(sigmoid(real))) - np.mean(np.log(1 - sigmoid(fake)))
  np.testing.assert_allclose(
    gan_losses.discriminator_loss(REAL, FAKE, 'non_saturating'), expected_d, rtol=1e-5
  )
  np.testing.assert_allclose(
    gan_losses.generator_loss(FAKE, 'non_saturating'), -np.mean(np.log(sigmoid(fake))), rtol=1e-5
  )
  # Stable at extreme logits, where log(sigmoid) in float32 would give inf.
  big = jnp.array([1e4, -1e4])
  np.testing.assert_allclose(gan_losses.generator_loss(big), 1e4 / 2, rtol=1e-6)
  assert jnp.isfinite(gan_losses.discriminator_loss(-big, big))


def test_hinge_losses_match_closed_form():
  expected_d = np.mean(np.maximum(0, 1 - REAL)) + np.mean(np.maximum(0, 1 + FAKE))
  # by hand: real hinge (0 + 2 + 0.5 + 0) / 4, fake hinge (0 + 1.25 + 2 + 0) / 4
  assert expected_d == pytest.approx(2.5 / 4 + 3.25 / 4)
  np.testing.assert_allclose(
    gan_losses.discriminator_loss(REAL, FAKE, 'hinge'), expected_d, rtol=1e-6
  )
  np.testing.assert_allclose(gan_losses.generator_loss(FAKE, 'hinge'), -np.mean(FAKE), rtol=1e-6)


def test_wasserstein_losses_match_closed_form():
  np.testing.assert_allclose(
    gan_losses.discriminator_loss(REAL, FAKE, 'wasserstein'),
    np.mean(FAKE) - np.mean(REAL),
    rtol=1e-6,
  )
  np.testing.assert_allclose(
    gan_losses.generator_loss(FAKE, 'wasserstein'), -np.mean(FAKE), rtol=1e-6
  )


def test_losses_are_scalars_and_unknown_kind_fails():
  for kind in gan_losses.KINDS:
    assert gan_losses.discriminator_loss(REAL, FAKE, kind).shape == ()
    assert gan_losses.generator_loss(FAKE, kind).shape == ()
  with pytest.raises(ValueError, match="'non_saturating', 'hinge', 'wasserstein'"):
    gan_losses.discriminator_loss(REAL, FAKE, 'lsgan')
  with pytest.raises(ValueError, match='unknown GAN loss kind'):
    gan_losses.generator_loss(FAKE, 'lsgan')
  with pytest.raises(ValueError, match='unknown GAN loss kind'):
    gan_losses.discriminator_accuracy(REAL, FAKE, 'lsgan')


def linear_d(w):
  return lambda x: jnp.sum(x * w, axis=(1, 2, 3))


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic():
  rng = np.random.default_rng(0)
  w = rng.normal(size=(4, 4, 2)).astype(np.float32)
  real = jnp.asarray(rng.uniform(size=(5, 4, 4, 2)), jnp.float32)
  fake = jnp.asarray(rng.uniform(size=(5, 4, 4, 2)), jnp.float32)
  unit = w / np.linalg.norm(w)
  gp = gan_losses.gradient_penalty(linear_d(unit), real, fake, jax.random.key(0))
  assert gp.shape == () and float(gp) < 1e-10
  # ||grad|| = 3 everywhere: (3 - 1)^2 = 4.
  gp3 = gan_losses.gradient_penalty(linear_d(3 * unit), real, fake, jax.random.key(0))
  np.testing.assert_allclose(gp3, 4.0, rtol=1e-5)
  # A nonlinear critic: the gradient norm varies between interpolates, so positive.
  quadratic = lambda x: jnp.sum(jnp.square(x), axis=(1, 2, 3))
  assert float(gan_losses.gradient_penalty(quadratic, real, fake, jax.random.key(1))) > 0


def test_gradient_penalty_interpolates_per_example_and_is_differentiable():
  # D(x) = ||x||^2 / 2 has grad x: with real = a, fake = 0, x_hat_i = t_i * a_i, and
  # the penalty is mean_i (t_i ||a_i|| - 1)^2 for the per-example t_i drawn from rng.
  a = jnp.ones((6, 2, 2, 1)) * jnp.arange(1.0, 7.0)[:, None, None, None]
  d = lambda x: 0.5 * jnp.sum(jnp.square(x), axis=(1, 2, 3))
  rng = jax.random.key(3)
  t = jax.random.uniform(rng, (6, 1, 1, 1))
  expected = jnp.mean(jnp.square(t[:, 0, 0, 0] * jnp.linalg.norm(a.reshape(6, -1), axis=1) - 1))
  np.testing.assert_allclose(
    gan_losses.gradient_penalty(d, a, jnp.zeros_like(a), rng), expected, rtol=1e-5
  )
  assert len(np.unique(np.asarray(t))) == 6  # one t per example
  # Gradients with respect to the critic's parameters are finite, even at x_hat = 0.
  grad = jax.jit(
    jax.grad(
      lambda s, real: gan_losses.gradient_penalty(
        lambda x: s * d(x), real, jnp.zeros_like(real), rng
      )
    )
  )
  g = grad(2.0, a)
  assert np.isfinite(g) and g != 0
  assert np.isfinite(grad(1.0, jnp.zeros_like(a)))


def test_r1_penalty_of_a_linear_critic_is_the_squared_weight_norm():
  rng = np.random.default_rng(1)
  w = rng.normal(size=(3, 3, 2)).astype(np.float32)
  real = jnp.asarray(rng.uniform(size=(4, 3, 3, 2)), jnp.float32)
  r1 = gan_losses.r1_penalty(linear_d(w), real)
  assert r1.shape == ()
  np.testing.assert_allclose(r1, np.sum(w.astype(np.float64) ** 2), rtol=1e-5)
  # Per example, not over the batch: D = ||x||^2 gives mean_i ||2 x_i||^2.
  quadratic = lambda x: jnp.sum(jnp.square(x), axis=(1, 2, 3))
  np.testing.assert_allclose(
    gan_losses.r1_penalty(quadratic, real),
    np.mean(np.sum(4 * np.asarray(real) ** 2, axis=(1, 2, 3))),
    rtol=1e-5,
  )


def test_discriminator_accuracy_uses_threshold_zero():
  for kind in gan_losses.KINDS:
    acc_real, acc_fake = gan_losses.discriminator_accuracy(REAL, FAKE, kind)
    # REAL > 0: 2, 0.5, 30 -> 3/4; FAKE < 0: -3, -40 -> 2/4
    np.testing.assert_allclose([acc_real, acc_fake], [0.75, 0.5])


def test_info_loss_is_the_code_cross_entropy():
  codes = jnp.array([0, 2, 1])
  # Uniform logits know nothing about the code: log K.
  np.testing.assert_allclose(gan_losses.info_loss(jnp.zeros((3, 4)), codes), np.log(4), rtol=1e-6)
  logits = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.1, 3.0], [0.0, 1.0, 0.0]])
  log_probs = np.asarray(jax.nn.log_softmax(logits))
  expected = -np.mean(log_probs[np.arange(3), np.asarray(codes)])
  np.testing.assert_allclose(gan_losses.info_loss(logits, codes), expected, rtol=1e-6)
  assert float(gan_losses.info_loss(100.0 * jax.nn.one_hot(codes, 3), codes)) < 1e-6


def test_ema_update():
  ema = {'a': jnp.array([1.0, 2.0]), 'b': {'c': jnp.array(4.0)}}
  params = {'a': jnp.array([3.0, 0.0]), 'b': {'c': jnp.array(0.0)}}
  out = gan_losses.ema_update(ema, params, 0.75)
  np.testing.assert_allclose(out['a'], [0.75 * 1 + 0.25 * 3, 0.75 * 2])
  np.testing.assert_allclose(out['b']['c'], 3.0)
  copied = gan_losses.ema_update(ema, params, 0.0)
  assert_trees_equal(copied, params)
  kept = gan_losses.ema_update(ema, params, 1.0)
  assert_trees_equal(kept, ema)
  # Repeated updates towards fixed params converge geometrically: gap * decay^n.
  e = ema
  for _ in range(10):
    e = jax.jit(gan_losses.ema_update, static_argnums=2)(e, params, 0.5)
  np.testing.assert_allclose(e['b']['c'], 4.0 * 0.5**10, rtol=1e-6)


@pytest.mark.parametrize('kind', gan_losses.KINDS)
def test_adam_steps_lower_the_discriminator_loss(kind):
  model = Discriminator(image_shape=(8, 8, 1), widths=(4,), num_classes=2)
  data = jax.random.uniform(jax.random.key(0), (8, 8, 8, 1))
  real = jnp.clip(data + 0.5, 0, 1)  # brighter than the fakes
  fake = data * 0.5
  labels = jnp.arange(8) % 2
  params = model.init(jax.random.key(1), real, labels)['params']
  tx = optax.adam(1e-2)

  def loss_fn(params):
    logits = model.apply(
      {'params': params}, jnp.concatenate([real, fake]), jnp.concatenate([labels, labels])
    )
    return gan_losses.discriminator_loss(logits[:8], logits[8:], kind), logits

  @jax.jit
  def step(params, opt_state):
    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, logits

  opt_state = tx.init(params)
  losses = []
  for _ in range(21):  # the 21st step reports the loss after 20 updates
    params, opt_state, loss, logits = step(params, opt_state)
    losses.append(float(loss))
  assert losses[-1] < losses[0] - 0.1
  logits_real, logits_fake = logits[:8], logits[8:]
  # A critic only learns the gap (its loss ignores a shared offset); the others separate
  # real from fake around the decision threshold 0.
  assert float(jnp.min(logits_real)) > float(jnp.max(logits_fake))
  if kind != 'wasserstein':
    acc_real, acc_fake = gan_losses.discriminator_accuracy(logits_real, logits_fake, kind)
    assert float(acc_real) == 1.0 and float(acc_fake) == 1.0


def _means(d_loss, acc_real=0.6, acc_fake=0.6):
  return {'d_loss': d_loss, 'd_accuracy_real': acc_real, 'd_accuracy_fake': acc_fake}


def test_divergence_monitor_warns_once_when_the_discriminator_wins_long_enough():
  monitor = gan_losses.DivergenceMonitor('non_saturating', warn_steps=1000)
  assert monitor(200, _means(1.3)) is None
  # Pinned from step 400 on (the stretch starts after the healthy log at 200).
  assert monitor(400, _means(1e-4, 1.0, 1.0)) is None
  assert monitor(1000, _means(1e-4, 1.0, 1.0)) is None
  message = monitor(1200, _means(1e-4, 1.0, 1.0))
  assert message and 'since step 200' in message and 'diverged' in message
  assert monitor(1400, _means(1e-4, 1.0, 1.0)) is None  # said once per stretch
  assert monitor(1600, _means(1.2)) is None  # recovered: a new stretch may warn again
  assert monitor(2400, _means(1e-4, 1.0, 1.0)) is None
  assert monitor(2600, _means(1e-4, 1.0, 1.0))


def test_divergence_monitor_judges_a_critic_by_its_accuracy():
  monitor = gan_losses.DivergenceMonitor('wasserstein', warn_steps=300)
  # A Wasserstein critic's loss has no floor: -50 alone is not divergence.
  assert monitor(100, _means(-50.0, 0.7, 0.8)) is None
  assert monitor(300, _means(-50.0, 0.7, 0.8)) is None
  assert monitor(500, _means(-50.0, 1.0, 1.0)) is None
  assert monitor(700, _means(-50.0, 1.0, 1.0))
