"""Loss and log-density functions against closed forms, Monte Carlo and gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.tasks import losses

RNG = np.random.default_rng(0)


def test_bernoulli_log_likelihood_matches_the_log_formula():
  logits = RNG.normal(size=(3, 4, 4, 2)).astype(np.float32) * 3
  x = RNG.uniform(size=(3, 4, 4, 2)).astype(np.float32)  # continuous targets work too
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  expected = (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=(1, 2, 3))
  got = losses.bernoulli_log_likelihood(logits, x)
  assert got.shape == (3,)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  # Binary targets: sigmoid_cross_entropy is its negative, averaged over the 32 pixels.
  xb = (x > 0.5).astype(np.float32)
  np.testing.assert_allclose(
    losses.sigmoid_cross_entropy(logits, xb),
    -losses.bernoulli_log_likelihood(logits, xb) / 32,
    rtol=1e-6,
  )


def test_bernoulli_log_likelihood_is_stable_for_extreme_logits():
  logits = jnp.array([-1e4, -100.0, 100.0, 1e4]).reshape(1, 2, 2, 1)
  x = jnp.array([0.0, 0.0, 1.0, 1.0]).reshape(1, 2, 2, 1)
  np.testing.assert_allclose(losses.bernoulli_log_likelihood(logits, x), [0.0], atol=1e-6)
  wrong = losses.bernoulli_log_likelihood(logits, 1.0 - x)
  np.testing.assert_allclose(wrong, [-(1e4 + 100 + 100 + 1e4)], rtol=1e-6)
  grads = jax.grad(lambda z: losses.bernoulli_log_likelihood(z, 1.0 - x).sum())(logits)
  assert jnp.isfinite(grads).all()


def test_gaussian_log_likelihood_matches_the_closed_form():
  mean = RNG.uniform(size=(2, 3, 3, 3)).astype(np.float32)
  x = RNG.uniform(size=(2, 3, 3, 3)).astype(np.float32)
  log_scale = np.array([-2.0, -1.0, 0.5], np.float32)  # per channel, broadcast
  var = np.exp(2.0 * log_scale)
  expected = (-0.5 * np.log(2 * np.pi * var) - (x - mean) ** 2 / (2 * var)).sum(axis=(1, 2, 3))
  np.testing.assert_allclose(
    losses.gaussian_log_likelihood(mean, log_scale, x), expected, rtol=1e-5
  )


def _normal_cdf(t):
  return 0.5 * (1 + math.erf(t / math.sqrt(2)))


def test_discretized_gaussian_is_a_distribution_over_8_bit_values():
  values = jnp.arange(256.0) / 255.0
  for mean, log_scale in [(0.3, -3.0), (0.0, -6.9), (1.0, 0.0), (0.5, -5.0)]:
    log_p = losses.discretized_gaussian_log_likelihood(
      jnp.full((256,), mean), jnp.float32(log_scale), values, event_ndims=0
    )
    assert float(log_p.max()) <= 1e-6
    np.testing.assert_allclose(float(jnp.exp(log_p).sum()), 1.0, atol=1e-4)
  # A middle bin is the CDF difference; an edge bin extends to infinity.
  mean, scale = 0.4, 0.05
  x = jnp.array([100 / 255, 0.0, 1.0])
  log_p = losses.discretized_gaussian_log_likelihood(
    jnp.full((3,), mean), jnp.float32(math.log(scale)), x, event_ndims=0
  )
  half = 0.5 / 255
  expected = [
    _normal_cdf((100 / 255 + half - mean) / scale) - _normal_cdf((100 / 255 - half - mean) / scale),
    _normal_cdf((half - mean) / scale),
    1 - _normal_cdf((1 - half - mean) / scale),
  ]
  np.testing.assert_allclose(np.exp(log_p), expected, rtol=1e-4, atol=1e-12)


def test_discretized_gaussian_gradients_are_finite_at_the_edges():
  x = jnp.array([0.0, 1 / 255, 0.5, 254 / 255, 1.0]).reshape(1, 1, 5, 1)

  def total(mean, log_scale):
    return losses.discretized_gaussian_log_likelihood(mean, log_scale, x).sum()

  for mean, log_scale in [(0.5, -6.9), (0.0, 0.0), (1.0, -3.0)]:
    grads = jax.grad(total, argnums=(0, 1))(jnp.full(x.shape, mean), jnp.float32(log_scale))
    assert all(bool(jnp.isfinite(g).all()) for g in grads)


def test_gaussian_kl_closed_form_values():
  zeros = jnp.zeros((2, 5))
  np.testing.assert_allclose(losses.gaussian_kl(zeros, zeros), [0.0, 0.0])
  # KL(N(1, 1) || N(0, 1)) = 1/2 per dim; KL(N(0, e) || N(0, 1)) = (e - 2) / 2 per dim.
  np.testing.assert_allclose(losses.gaussian_kl(jnp.ones((1, 4)), jnp.zeros((1, 4))), [2.0])
  np.testing.assert_allclose(
    losses.gaussian_kl(jnp.zeros((1, 3)), jnp.ones((1, 3))), [1.5 * (math.e - 2)], rtol=1e-6
  )


def test_gaussian_kl_matches_monte_carlo():
  mean = jnp.array([[0.5, -1.0, 2.0]])
  logvar = jnp.array([[-1.0, 0.5, 0.0]])
  eps = jnp.asarray(RNG.standard_normal((100_000, 1, 3)), jnp.float32)
  z = mean + jnp.exp(logvar / 2) * eps  # [K, B, D]: sample axes pass through
  log_ratio = losses.gaussian_log_prob(z, mean, logvar) - losses.standard_normal_log_prob(z)
  assert log_ratio.shape == (100_000, 1)
  estimate = log_ratio.mean(axis=0)
  stderr = float(log_ratio.std()) / math.sqrt(100_000)
  np.testing.assert_allclose(estimate, losses.gaussian_kl(mean, logvar), atol=4 * stderr)


def test_gaussian_log_prob_closed_form():
  z = jnp.array([[0.3, -1.2]])
  expected = -math.log(2 * math.pi) - 0.5 * (0.3**2 + 1.2**2)
  np.testing.assert_allclose(losses.standard_normal_log_prob(z), [expected], rtol=1e-6)
  np.testing.assert_allclose(
    losses.gaussian_log_prob(z, jnp.zeros(2), jnp.zeros(2)), [expected], rtol=1e-6
  )
  # N(z; m, s^2) at z = m: -log(s) - log(2 pi)/2 per dim.
  np.testing.assert_allclose(
    losses.gaussian_log_prob(z, z, jnp.log(jnp.array([4.0, 0.25]))),
    [-math.log(2) + math.log(2) - math.log(2 * math.pi)],
    atol=1e-6,
  )


def test_elbo_and_negative_elbo_loss():
  np.testing.assert_allclose(
    losses.elbo(jnp.array([-10.0, -3.0]), jnp.array([2.0, 0.5])), [-12.0, -3.5]
  )
  x = jnp.zeros((2, 2, 2, 1))
  outputs = {
    'out': jnp.zeros((2, 2, 2, 1)),  # logits 0: log p = 4 log(1/2) per image
    'mean': jnp.ones((2, 3)),
    'logvar': jnp.zeros((2, 3)),
  }  # KL = 1.5
  expected = 4 * math.log(2) + 1.5
  np.testing.assert_allclose(losses.negative_elbo_loss(outputs, x), expected, rtol=1e-6)
  np.testing.assert_allclose(
    losses.negative_elbo_loss(outputs, x, kl_weight=0.0), 4 * math.log(2), rtol=1e-6
  )
  gaussian = {**outputs, 'out': {'mean': x + 0.5, 'log_scale': jnp.zeros(1)}}
  for likelihood in ('gaussian', 'discretized_gaussian'):
    loss = losses.negative_elbo_loss(gaussian, x, likelihood=likelihood)
    assert loss.shape == () and jnp.isfinite(loss)
  with pytest.raises(ValueError, match='unknown likelihood'):
    losses.negative_elbo_loss(outputs, x, likelihood='poisson')


def test_reconstruction_losses():
  logits = jnp.array([[0.0, 2.0], [-1.0, 3.0]]).reshape(1, 2, 2, 1)
  target = jnp.array([[0.0, 1.0], [0.5, 1.0]]).reshape(1, 2, 2, 1)
  mse = losses.reconstruction_loss(logits, target, kind='mse')
  np.testing.assert_allclose(mse, [jnp.mean((jax.nn.sigmoid(logits) - target) ** 2)], rtol=1e-6)
  np.testing.assert_allclose(losses.mse_loss(target, jnp.zeros_like(target)), [2.25 / 4])
  np.testing.assert_allclose(
    losses.reconstruction_loss(logits, target, kind='bce'),
    losses.sigmoid_cross_entropy(logits, target),
  )
  with pytest.raises(ValueError, match="'bce' or 'mse'"):
    losses.reconstruction_loss(logits, target, kind='l1')


def test_log_likelihoods_pass_leading_sample_axes_through():
  logits = jnp.zeros((5, 2, 4, 4, 1))  # [K samples, B, H, W, C]
  assert losses.bernoulli_log_likelihood(logits, jnp.zeros((2, 4, 4, 1))).shape == (5, 2)
  assert losses.decoder_log_likelihood(
    {'mean': logits + 0.5, 'log_scale': jnp.zeros(1)},
    jnp.zeros((2, 4, 4, 1)),
    'discretized_gaussian',
  ).shape == (5, 2)
