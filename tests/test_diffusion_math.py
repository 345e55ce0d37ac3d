"""Diffusion and flow-matching math against closed forms: schedules, conversions, the VDM
bound of Gaussian data."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.tasks import diffusion_objectives as obj
from genjax.tasks.diffusion_schedules import KINDS, Schedule, alpha_sigma, ddpm_logsnr_endpoints
from genjax.tasks.diffusion_schedules import logsnr_and_derivative

KEY = jax.random.PRNGKey(0)


def softplus(x):
  return np.logaddexp(0.0, x)


def gaussian_denoiser(scale, objective='eps', schedule=Schedule()):
  """The optimal model for data N(0, scale^2) per dimension: E[eps | z] and E[x | z] are
  linear in z, ``eps_hat = sigma z / (alpha^2 s^2 + sigma^2)``; output per objective."""

  def denoise(z, t, labels):
    alpha, sigma = obj.path_alpha_sigma(objective, schedule, t.reshape((-1,) + (1,) * (z.ndim - 1)))
    var = jnp.square(alpha * scale) + jnp.square(sigma)
    eps, x0 = sigma * z / var, alpha * scale**2 * z / var
    if objective == 'v':
      return alpha * eps - sigma * x0
    return eps - x0 if objective == 'flow' else eps

  return denoise


def point_mass_denoiser(target, objective='eps', schedule=Schedule()):
  """The optimal model for data that is always ``target``: x0_hat = target."""

  def denoise(z, t, labels):
    alpha, sigma = obj.path_alpha_sigma(objective, schedule, t)
    eps = obj.eps_from_x0(z, target, alpha, sigma)
    if objective == 'flow':
      return eps - target  # = (z - target) / t, singular at t = 0
    return obj.v_from_x0_eps(target, eps, alpha, sigma) if objective == 'v' else eps

  return denoise


# --- schedules ---


@pytest.mark.parametrize('kind', KINDS)
def test_schedule_endpoints_variance_preserving_and_decreasing(kind):
  for schedule in (Schedule(kind), Schedule(kind, logsnr_max=7.0, logsnr_min=-3.0)):
    ends = schedule(jnp.array([0.0, 1.0]))
    np.testing.assert_allclose(ends, [schedule.logsnr_max, schedule.logsnr_min], atol=1e-4)
    t = jnp.linspace(0.0, 1.0, 1001)
    logsnr = schedule(t)
    assert np.all(np.diff(np.asarray(logsnr)) < 0)
    alpha, sigma = alpha_sigma(logsnr)
    np.testing.assert_allclose(alpha**2 + sigma**2, 1.0, atol=1e-6)
    np.testing.assert_allclose(jnp.log(alpha**2 / sigma**2), logsnr, atol=2e-4 * 15)
  assert Schedule('linear_logsnr').logsnr_max == 13.3  # VDM's gamma_min = -13.3
  assert Schedule('linear_logsnr').logsnr_min == -5.0  # VDM's gamma_max = 5


@pytest.mark.parametrize('kind', KINDS)
def test_logsnr_derivative_matches_closed_form_and_differences(kind):
  schedule = Schedule(kind, logsnr_max=10.0, logsnr_min=-10.0)
  t = jnp.linspace(0.05, 0.95, 19)
  logsnr, slope = logsnr_and_derivative(schedule, t)
  np.testing.assert_allclose(logsnr, schedule(t))
  h = 1e-3
  central = (schedule(t + h) - schedule(t - h)) / (2 * h)
  np.testing.assert_allclose(slope, central, rtol=2e-3)
  if kind == 'linear_logsnr':
    np.testing.assert_allclose(slope, -20.0, rtol=1e-6)
  if kind == 'cosine':  # lambda = -2 log tan(a t + b): lambda' = -4 a / sin(2 (a t + b))
    b = math.atan(math.exp(-5.0))
    a = math.atan(math.exp(5.0)) - b
    np.testing.assert_allclose(slope, -4 * a / np.sin(2 * (a * np.asarray(t) + b)), rtol=1e-4)


def test_linear_schedule_follows_ddpm_discrete_betas():
  betas = np.linspace(1e-4, 0.02, 1000)
  discrete = -np.log(np.expm1(np.cumsum(-np.log1p(-betas))))
  assert ddpm_logsnr_endpoints() == pytest.approx((discrete[0], discrete[-1]))
  continuous = Schedule('linear')(jnp.arange(1000) / 999.0)
  np.testing.assert_allclose(continuous, discrete, atol=0.011)


def test_schedules_and_objectives_reject_bad_input():
  with pytest.raises(ValueError, match='unknown noise schedule'):
    Schedule('quadratic')
  with pytest.raises(ValueError, match='must exceed'):
    Schedule('cosine', logsnr_max=-1.0, logsnr_min=2.0)
  with pytest.raises(ValueError, match='unknown diffusion objective'):
    obj.path_alpha_sigma('score', Schedule(), 0.5)


# --- conversions and losses ---


def test_conversions_round_trip():
  rx, re, rt = jax.random.split(KEY, 3)
  x0, eps = jax.random.normal(rx, (5, 3, 2)), jax.random.normal(re, (5, 3, 2))
  t = jax.random.uniform(rt, (5,), minval=0.05, maxval=0.95)
  alpha, sigma = alpha_sigma(Schedule()(t))
  z = obj.diffuse(x0, t, eps, 'eps', Schedule())
  close = lambda a, b: np.testing.assert_allclose(a, b, atol=5e-5)
  close(obj.x0_from_eps(z, eps, alpha, sigma), x0)
  close(obj.eps_from_x0(z, x0, alpha, sigma), eps)
  v = obj.v_from_x0_eps(x0, eps, alpha, sigma)
  close(obj.x0_from_v(z, v, alpha, sigma), x0)
  close(obj.eps_from_v(z, v, alpha, sigma), eps)
  outputs = {'eps': eps, 'vdm': eps, 'v': v, 'flow': eps - x0}
  for objective, output in outputs.items():
    z_path = obj.diffuse(x0, t, eps, objective, Schedule())
    x0_hat, eps_hat = obj.output_to_x0_eps(output, z_path, t, objective, Schedule())
    close(x0_hat, x0)
    close(eps_hat, eps)


@pytest.mark.parametrize('objective', ['eps', 'v', 'flow'])
def test_regression_losses_vanish_for_the_exact_model(objective):
  x = jax.random.normal(KEY, (4, 6))
  rng = jax.random.PRNGKey(1)
  # The exact model knows x: from (z, t) it recovers the very noise that was drawn.
  exact = point_mass_denoiser(x, objective)
  loss = obj.loss(objective, exact, x, rng, schedule=Schedule(), antithetic=True)
  assert loss.shape == (4,)
  np.testing.assert_allclose(loss, 0.0, atol=1e-8)
  wrong = obj.loss(objective, lambda z, t, y: jnp.zeros_like(z), x, rng, schedule=Schedule())
  assert np.all(wrong > 0.01)


def test_antithetic_times_stratify_the_batch():
  t = np.sort(np.asarray(obj.sample_times(KEY, 8, antithetic=True)))
  np.testing.assert_allclose(np.diff(t), 1 / 8, atol=1e-6)
  assert 0 <= t[0] < 1 / 8


def test_vdm_diffusion_loss_is_zero_for_the_exact_noise():
  x = jax.random.normal(KEY, (4, 8, 8, 1))
  schedule = Schedule('linear_logsnr')
  exact = point_mass_denoiser(x, 'vdm', schedule)
  loss = obj.vdm_diffusion_loss(exact, x, jax.random.PRNGKey(2), schedule=schedule)
  np.testing.assert_allclose(loss, 0.0, atol=1e-6)


def test_vdm_bound_of_gaussian_data_with_the_optimal_denoiser_matches_closed_form():
  # x ~ N(0, s^2) in each of D dimensions; with E[eps | z] the diffusion term's t-integral
  # is 0.5 D int sigmoid(lambda + 2 log s) dlambda = 0.5 D [softplus(lambda + 2 log s)].
  scale, batch, dims = 0.7, 1024, 512
  schedule = Schedule('linear_logsnr')
  hi, lo = schedule.logsnr_max, schedule.logsnr_min
  x = scale * jax.random.normal(KEY, (batch, dims))
  denoise = gaussian_denoiser(scale, 'vdm', schedule)
  terms = obj.vdm_terms(denoise, x, jax.random.PRNGKey(3), schedule=schedule, num_levels=None)
  c = 2 * math.log(scale)
  alpha1_sq = 1 / (1 + math.exp(-lo))
  expected = {
    'diffusion': 0.5 * dims * (softplus(hi + c) - softplus(lo + c)),
    'prior': 0.5 * dims * (alpha1_sq * scale**2 - alpha1_sq - math.log1p(-alpha1_sq)),
    'reconstruction': dims * 0.5 * (math.log(2 * math.pi) - hi + 1.0),
  }
  for name, values in terms.items():
    # Antithetic t ties the examples together; examples i = g mod 16 form 16 groups that
    # each cover [0, 1) evenly, nearly independent: their spread gives the standard error.
    group_means = np.asarray(values, np.float64).reshape(-1, 16).mean(axis=0)
    stderr = group_means.std(ddof=1) / 4
    assert stderr < 5e-3 * abs(expected[name]), name
    assert abs(group_means.mean() - expected[name]) < 4 * stderr, name
  # The bound sits just above the true NLL, D (log(2 pi s^2) + 1) / 2.
  bound, nll = sum(expected.values()), dims * 0.5 * (math.log(2 * math.pi * scale**2) + 1)
  assert 0 < bound - nll < 0.01 * dims
  bpd = obj.vdm_loss(denoise, x, jax.random.PRNGKey(3), schedule=schedule, num_levels=None)
  np.testing.assert_allclose(bpd, sum(terms.values()) / (dims * math.log(2)), rtol=1e-5)


def test_vdm_discrete_decoder_matches_its_logistic_form():
  # Binarized data (K = 2, centres -0.5, 0.5) at lambda_0 = 0: the decoder's
  # -log p(x = 0.5 | z) = softplus(-z / alpha_0) with z / alpha_0 = 0.5 + eps.
  schedule = Schedule('linear_logsnr', logsnr_max=0.0, logsnr_min=-5.0)
  x = jnp.full((64, 256), 0.5) * jnp.where(jnp.arange(256) % 2 == 0, 1.0, -1.0)
  nll = obj.vdm_reconstruction_loss(x, KEY, schedule, num_levels=2) / 256
  nodes, weights = np.polynomial.hermite_e.hermegauss(60)
  expected = np.sum(weights * softplus(-(0.5 + nodes))) / np.sqrt(2 * np.pi)
  stderr = np.asarray(nll).std() / 8
  assert abs(float(nll.mean()) - expected) < 4 * stderr + 1e-4
  # 8-bit data at VDM's lambda_0 = 13.3 (noise 0.0013, half a bin 0.0039): nearly exact.
  levels = obj.centered_levels(jnp.arange(256.0).reshape(4, 64) / 255)
  np.testing.assert_allclose(levels[0, :2], [-255 / 256, -253 / 256])
  recon = obj.vdm_reconstruction_loss(levels, KEY, Schedule('linear_logsnr'), 256)
  assert np.all((recon >= 0) & (recon < 0.05 * 64))
