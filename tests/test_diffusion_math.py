"""Diffusion and flow-matching math against closed forms: schedules, conversions, the VDM
bound of Gaussian data, samplers on denoisers that are optimal for known data."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.tasks import diffusion_objectives as obj
from genjax.tasks import diffusion_samplers as samplers
from genjax.tasks.diffusion_guidance import guided_output
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


def test_schedules_and_samplers_reject_bad_input():
  with pytest.raises(ValueError, match='unknown noise schedule'):
    Schedule('quadratic')
  with pytest.raises(ValueError, match='must exceed'):
    Schedule('cosine', logsnr_max=-1.0, logsnr_min=2.0)
  with pytest.raises(ValueError, match='unknown diffusion objective'):
    obj.path_alpha_sigma('score', Schedule(), 0.5)
  denoise = lambda z, t, labels: z
  with pytest.raises(ValueError, match='positive'):
    samplers.ddim_sample(denoise, KEY, (1, 2), steps=0)
  with pytest.raises(ValueError, match='unknown ODE method'):
    samplers.ode_sample(denoise, KEY, (1, 2), method='rk4')
  with pytest.raises(ValueError, match='snapshots'):
    samplers.ode_sample(denoise, KEY, (1, 2), steps=2, trajectory=3)


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
  zero = lambda z, t, y: jnp.zeros_like(z)
  losses = jax.jit(
    lambda x: [obj.loss(objective, d, x, rng, schedule=Schedule()) for d in (exact, zero)]
  )
  loss, wrong = losses(x)
  assert loss.shape == (4,)
  np.testing.assert_allclose(loss, 0.0, atol=1e-8)
  assert np.all(wrong > 0.01)


def test_antithetic_times_stratify_the_batch():
  t = np.sort(np.asarray(obj.sample_times(KEY, 8, antithetic=True)))
  np.testing.assert_allclose(np.diff(t), 1 / 8, atol=1e-6)
  assert 0 <= t[0] < 1 / 8


def test_stratified_times_cover_the_batch_evenly_whichever_device_holds_an_example():
  positions = jnp.arange(8)
  whole = obj.stratified_times(KEY, positions, 8)
  halves = [obj.stratified_times(KEY, positions[i : i + 4], 8) for i in (0, 4)]
  np.testing.assert_array_equal(whole, jnp.concatenate(halves))
  np.testing.assert_allclose(np.diff(np.sort(np.asarray(whole))), 1 / 8, atol=1e-6)
  # A loss given times uses them, and draws the noise it draws without them.
  x = jax.random.normal(KEY, (8, 6))
  keys = jax.random.split(jax.random.PRNGKey(3), 8)
  eps = obj.normal(obj.split(keys)[1], x.shape)
  outputs_t = lambda z, t, y: jnp.broadcast_to(t[:, None], z.shape)
  loss = obj.loss('eps', outputs_t, x, keys, schedule=Schedule(), t=whole)
  np.testing.assert_allclose(loss, jnp.mean(jnp.square(whole[:, None] - eps), -1), rtol=1e-6)


def test_per_example_keys_draw_each_example_alone_whatever_the_batch():
  """With one key per example, an example's loss is the one it has in a batch of its own:
  the property that makes data-parallel strategies agree."""
  x = jax.random.normal(KEY, (4, 6))
  keys = jax.random.split(jax.random.PRNGKey(3), 4)
  model = lambda z, t, y: 0.5 * z + t[:, None]  # depends on the drawn z and t
  labels = jnp.arange(4)

  @jax.jit
  def batched_and_alone(x):
    out = {}
    for objective in ('eps', 'v', 'flow', 'vdm'):
      kwargs = {'antithetic': False} if objective == 'vdm' else {}
      whole = obj.loss(objective, model, x, keys, **kwargs)
      alone = jnp.concatenate(
        [obj.loss(objective, model, x[i : i + 1], keys[i : i + 1], **kwargs) for i in range(4)]
      )
      out[objective] = (whole, alone)
    dropped = obj.drop_labels(keys, labels, 9, 0.5)
    dropped_alone = jnp.concatenate(
      [obj.drop_labels(keys[i : i + 1], labels[i : i + 1], 9, 0.5) for i in range(4)]
    )
    return out, (dropped, dropped_alone)

  out, (dropped, dropped_alone) = batched_and_alone(x)
  for objective, (whole, alone) in out.items():
    np.testing.assert_allclose(whole, alone, rtol=1e-6, err_msg=objective)
  np.testing.assert_array_equal(dropped, dropped_alone)
  with pytest.raises(ValueError, match='one key'):
    obj.sample_times(keys, 4, antithetic=True)


def test_vdm_diffusion_loss_is_zero_for_the_exact_noise_and_the_total_is_bits_per_dim():
  x = obj.centered_levels(jax.random.uniform(KEY, (4, 8, 8, 1)))  # 8-bit, VDM's scaling
  schedule = Schedule('linear_logsnr')
  exact = point_mass_denoiser(x, 'vdm', schedule)
  rng = jax.random.PRNGKey(2)
  terms, bpd = jax.jit(
    lambda x: (obj.vdm_terms(exact, x, rng), obj.loss('vdm', exact, x, rng, schedule=schedule))
  )(x)
  np.testing.assert_allclose(terms['diffusion'], 0.0, atol=1e-6)
  np.testing.assert_allclose(bpd, sum(terms.values()) / (64 * math.log(2)), rtol=1e-6)


def test_vdm_bound_of_gaussian_data_with_the_optimal_denoiser_matches_closed_form():
  # x ~ N(0, s^2) in each of D dimensions; with E[eps | z] the diffusion term's t-integral
  # is 0.5 D int sigmoid(lambda + 2 log s) dlambda = 0.5 D [softplus(lambda + 2 log s)].
  scale, batch, dims = 0.7, 1024, 512
  schedule = Schedule('linear_logsnr')
  hi, lo = schedule.logsnr_max, schedule.logsnr_min
  x = scale * jax.random.normal(KEY, (batch, dims))
  denoise = gaussian_denoiser(scale, 'vdm', schedule)
  # jit: one compile instead of one per operation (eager), so the test stays fast.
  vdm_terms = jax.jit(lambda x, rng: obj.vdm_terms(denoise, x, rng, None, schedule, None))
  terms = vdm_terms(x, jax.random.PRNGKey(3))
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
  bpd = obj.bits_per_dim(sum(terms.values()), x)
  np.testing.assert_allclose(bpd, sum(terms.values()) / (dims * math.log(2)), rtol=1e-6)


def test_vdm_discrete_decoder_matches_its_logistic_form():
  # Binarized data (K = 2, centres -0.5, 0.5) at lambda_0 = 0: the decoder's
  # -log p(x = 0.5 | z) = softplus(-z / alpha_0) with z / alpha_0 = 0.5 + eps.
  schedule = Schedule('linear_logsnr', logsnr_max=0.0, logsnr_min=-5.0)
  x = jnp.full((64, 256), 0.5) * jnp.where(jnp.arange(256) % 2 == 0, 1.0, -1.0)
  nll = jax.jit(lambda x: obj.vdm_reconstruction_loss(x, KEY, schedule, 2))(x) / 256
  nodes, weights = np.polynomial.hermite_e.hermegauss(60)
  expected = np.sum(weights * softplus(-(0.5 + nodes))) / np.sqrt(2 * np.pi)
  stderr = np.asarray(nll).std() / 8
  assert abs(float(nll.mean()) - expected) < 4 * stderr + 1e-4
  # 8-bit data at VDM's lambda_0 = 13.3 (noise 0.0013, half a bin 0.0039): nearly exact.
  levels = obj.centered_levels(jnp.arange(256.0).reshape(4, 64) / 255)
  np.testing.assert_allclose(levels[0, :2], [-255 / 256, -253 / 256])
  recon = jax.jit(lambda x: obj.vdm_reconstruction_loss(x, KEY, Schedule('linear_logsnr')))(levels)
  assert np.all((recon >= 0) & (recon < 0.05 * 64))


# --- samplers ---


def test_guidance_zero_is_unconditional_and_one_conditional_in_one_batched_call():
  calls = []

  def denoise(z, t, labels):
    calls.append(z.shape[0])
    return 0.5 * z + labels[:, None].astype(z.dtype) ** 2

  z, t = jnp.ones((3, 2)), jnp.full((3,), 0.5)
  labels, null = jnp.array([0, 1, 2]), jnp.full((3,), 10)
  np.testing.assert_allclose(guided_output(denoise, z, t, labels, 0.0, 10), denoise(z, t, null))
  np.testing.assert_allclose(guided_output(denoise, z, t, labels, 1.0, 10), denoise(z, t, labels))
  cond, uncond = denoise(z, t, labels), denoise(z, t, null)
  np.testing.assert_allclose(
    guided_output(denoise, z, t, labels, 3.0, 10), uncond + 3 * (cond - uncond)
  )
  calls.clear()
  guided_output(denoise, z, t, labels, 2.0, 10)
  assert calls == [6]  # one call on 2B
  with pytest.raises(ValueError, match='null_label'):
    guided_output(denoise, z, t, labels, 2.0, None)
  # Through a sampler: w = 1 and w = 0 are the plain conditional and null-class samples.
  kw = dict(steps=4, z_init=jnp.ones((3, 2)), objective='v')
  run = lambda labels, **g: samplers.ddim_sample(denoise, KEY, (3, 2), labels, **kw, **g).x
  np.testing.assert_allclose(run(labels, guidance=1.0, null_label=10), run(labels), rtol=1e-5)
  np.testing.assert_allclose(run(labels, guidance=0.0, null_label=10), run(null), rtol=1e-5)


def test_a_guidance_interval_guides_only_inside_it_and_skips_the_second_call_outside():
  def denoise(z, t, labels):
    jax.debug.callback(lambda n: calls.append(int(n)), z.shape[0])  # runs inside the loop
    return 0.5 * z + labels[:, None].astype(z.dtype) ** 2

  labels = jnp.array([0, 1, 2])
  kw = dict(steps=10, z_init=jnp.ones((3, 2)), objective='v', null_label=10)
  run = lambda **g: samplers.ddim_sample(denoise, KEY, (3, 2), labels, **kw, **g).x
  calls = []
  everywhere = run(guidance=3.0)
  assert calls == [6] * 10
  calls = []
  np.testing.assert_allclose(run(guidance=3.0, guidance_interval=(0.0, 1.0)), everywhere)
  # t = 1.0, 0.9, ..., 0.1: guided at 0.7 and 0.6 only (0.5 < t <= 0.7).
  calls = []
  limited = run(guidance=3.0, guidance_interval=(0.5, 0.7))
  assert sorted(calls) == [3] * 8 + [6] * 2
  assert not np.allclose(limited, everywhere)
  # Outside it the model is the plain conditional one: an empty-ish interval is w = 1.
  calls = []
  np.testing.assert_allclose(run(guidance=3.0, guidance_interval=(0.95, 0.99)), run(), rtol=1e-6)


def ddim_gain(scale, schedule, times):
  """DDIM's exact gain on N(0, s^2) data, where x0_hat and eps_hat are linear in z: a step
  from t to s multiplies z by ``u_s . u_t / |u_t|^2`` with ``u = (alpha s, sigma)``."""
  alpha, sigma = alpha_sigma(schedule(jnp.asarray(times)))
  u = np.stack([np.asarray(alpha, np.float64) * scale, np.asarray(sigma, np.float64)], -1)
  return np.prod(np.sum(u[1:] * u[:-1], -1) / np.sum(u[:-1] ** 2, -1))


def test_ddim_eta_zero_is_deterministic_and_inverts_gaussian_data():
  scale, schedule, steps = 0.5, Schedule(), 200
  denoise = gaussian_denoiser(scale, 'eps', schedule)
  z1 = jax.random.normal(KEY, (16, 4))
  kw = dict(schedule=schedule, steps=steps, z_init=z1)
  a = samplers.ddim_sample(denoise, jax.random.PRNGKey(1), z1.shape, **kw)
  b = samplers.ddim_sample(denoise, jax.random.PRNGKey(2), z1.shape, **kw)
  np.testing.assert_array_equal(a.x, b.x)
  c = samplers.ddim_sample(denoise, jax.random.PRNGKey(2), z1.shape, eta=0.5, **kw)
  assert not np.allclose(a.x, c.x)
  down, up = np.linspace(1.0, 0.0, steps + 1), np.linspace(0.0, 1.0, steps + 1)
  np.testing.assert_allclose(a.x, z1 * ddim_gain(scale, schedule, down), rtol=1e-4)
  x = scale * jax.random.normal(jax.random.PRNGKey(4), (16, 4))
  latent = samplers.ddim_invert(denoise, x, schedule=schedule, steps=steps)
  assert latent.nfe == steps
  np.testing.assert_allclose(latent.x, x * ddim_gain(scale, schedule, up), rtol=1e-4)
  decoded = samplers.ddim_sample(
    denoise, KEY, x.shape, schedule=schedule, steps=steps, z_init=latent.x
  )
  # Each pass is first order: it shrinks z by about (lambda step) / 8 = 30 / 200 / 8, so
  # the round trip comes back within ~4% (the same 200 steps of Heun: within 1e-4).
  np.testing.assert_allclose(decoded.x, x, rtol=0.04)


def ddpm_std(scale, schedule, steps):
  """The std of ancestral (eta = 1) samples of N(0, s^2) data after ``steps`` steps from
  N(0, 1): each step is ``z_s = g z_t + c xi``, so ``var_s = g^2 var_t + c^2``."""
  alpha, sigma = alpha_sigma(schedule(jnp.linspace(1.0, 0.0, steps + 1)))
  alpha, sigma = np.asarray(alpha, np.float64), np.asarray(sigma, np.float64)
  var = 1.0
  for (a_t, s_t), (a_s, s_s) in zip(zip(alpha, sigma), zip(alpha[1:], sigma[1:])):
    total = a_t**2 * scale**2 + s_t**2  # x0_hat = a_t s^2 z / total, eps_hat = s_t z / total
    c = s_s / s_t * math.sqrt(max(s_t**2 - (a_t / a_s * s_s) ** 2, 0.0))
    g = (a_s * a_t * scale**2 + math.sqrt(s_s**2 - c**2) * s_t) / total
    var = g**2 * var + c**2
  return math.sqrt(var)


@pytest.mark.parametrize('objective', ['eps', 'v'])
def test_probability_flow_heun_and_ddpm_sample_gaussian_data(objective):
  scale, schedule, steps = 0.5, Schedule('cosine', logsnr_max=10.0, logsnr_min=-10.0), 40
  denoise = gaussian_denoiser(scale, objective, schedule)
  z1 = jax.random.normal(KEY, (4096, 1))
  # The exact ODE map scales z by the ratio of the marginal stds at t = 0 and t = 1.
  marginal_std = lambda t: math.sqrt(sum(np.square(alpha_sigma(schedule(t))) * [scale**2, 1]))
  kw = dict(objective=objective, schedule=schedule, steps=steps)
  ode = samplers.ode_sample(denoise, KEY, z1.shape, z_init=z1, **kw)
  assert ode.nfe == 2 * steps - 1
  np.testing.assert_allclose(ode.x, z1 * marginal_std(0.0) / marginal_std(1.0), rtol=2e-3)
  # Ancestral sampling in 40 steps is biased (std ~0.46, not 0.5), by exactly this much:
  expected = ddpm_std(scale, schedule, steps)
  ddpm = samplers.ddpm_sample(denoise, KEY, z1.shape, **kw)
  assert abs(float(jnp.std(ddpm.x)) - expected) < 4 * expected / math.sqrt(2 * 4096)
  assert abs(float(jnp.mean(ddpm.x))) < 4 * expected / math.sqrt(4096)


def test_euler_is_exact_on_straight_flows_and_heun_on_velocities_linear_in_t():
  target = jax.random.normal(KEY, (3, 5))
  z1 = jax.random.normal(jax.random.PRNGKey(1), (3, 5))
  flow = point_mass_denoiser(target, 'flow')  # u = (z - target) / t, straight paths
  for steps in (1, 7):
    euler = samplers.ode_sample(flow, KEY, z1.shape, steps=steps, method='euler', z_init=z1)
    np.testing.assert_allclose(euler.x, target, atol=1e-5)
    assert euler.nfe == steps
  heun = samplers.ode_sample(flow, KEY, z1.shape, steps=6, z_init=z1)  # Euler last step
  np.testing.assert_allclose(heun.x, target, atol=1e-5)
  assert heun.nfe == 11
  ddim = samplers.ddim_sample(flow, KEY, z1.shape, objective='flow', steps=6, z_init=z1)
  np.testing.assert_allclose(ddim.x, target, atol=1e-5)
  # u = a + b t: the exact endpoint is z1 - a - b / 2; Euler misses it by -b / (2N).
  a, b = target, 2.0 * z1 + 1.0
  linear_in_t = lambda z, t, labels: a + b * t[:, None]
  exact = z1 - a - b / 2
  heun = samplers.ode_sample(linear_in_t, KEY, z1.shape, steps=5, euler_last_step=False, z_init=z1)
  np.testing.assert_allclose(heun.x, exact, atol=1e-5)
  assert heun.nfe == 10
  euler = samplers.ode_sample(linear_in_t, KEY, z1.shape, steps=5, method='euler', z_init=z1)
  np.testing.assert_allclose(euler.x - exact, -b / 10, atol=1e-5)


@pytest.mark.parametrize('euler_last_step', [True, False])
def test_heun_steps_as_two_calls_a_step_by_hand_do(euler_last_step):
  """The compiled Heun loop calls the model once an iteration; stepping by hand, two calls
  a step (one on an Euler last step), must give its states and snapshots."""
  velocity = lambda z, t, labels: jnp.sin(3.0 * z) * (1.0 + t[:, None])  # curved paths
  z1 = jax.random.normal(KEY, (3, 2))
  steps = 4
  out = samplers.ode_sample(
    velocity, KEY, z1.shape, steps=steps, euler_last_step=euler_last_step, trajectory=steps,
    z_init=z1,
  )  # fmt: skip
  z, states = z1, []
  for k in range(steps):
    t, s = 1.0 - k / steps, 1.0 - (k + 1) / steps
    states.append(z)
    v_t = velocity(z, jnp.full((3,), t), None)
    if k == steps - 1 and euler_last_step:
      z = z + (s - t) * v_t
    else:
      v_s = velocity(z + (s - t) * v_t, jnp.full((3,), s), None)
      z = z + (s - t) * 0.5 * (v_t + v_s)
  np.testing.assert_allclose(out.x, z, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out.trajectory['z'], jnp.stack(states), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out.trajectory['t'], [1.0, 0.75, 0.5, 0.25])
  assert out.nfe == (2 * steps - 1 if euler_last_step else 2 * steps)


def test_inpainting_keeps_the_known_region_and_fills_the_rest():
  target = jax.random.normal(KEY, (2, 4, 4, 1))
  known = -target  # the model believes in `target`; the known pixels must win anyway
  mask = (jnp.arange(4) < 2).astype(jnp.float32)[None, :, None, None]  # top half known
  out = samplers.inpaint_sample(point_mass_denoiser(target), KEY, known, mask, steps=10)
  np.testing.assert_array_equal(out.x[:, :2], known[:, :2])
  np.testing.assert_allclose(out.x[:, 2:], target[:, 2:], atol=1e-2)


def test_trajectory_snapshots():
  target = jax.random.normal(KEY, (3, 2))
  z1 = jax.random.normal(jax.random.PRNGKey(1), (3, 2))
  out = samplers.ode_sample(point_mass_denoiser(target, 'flow'), KEY, z1.shape, steps=8,
                            method='euler', trajectory=3, z_init=z1)  # fmt: skip
  traj = out.trajectory
  assert traj['z'].shape == (3, 3, 2) and traj['x0'].shape == (3, 3, 2)
  np.testing.assert_allclose(traj['t'], [1.0, 1 - 4 / 8, 1 - 7 / 8])  # steps 0, 4 (3.5), 7
  np.testing.assert_allclose(traj['z'][0], z1)
  np.testing.assert_allclose(traj['x0'], jnp.broadcast_to(target, (3, 3, 2)), atol=1e-5)
  np.testing.assert_allclose(traj['z'][1], 0.5 * target + 0.5 * z1, atol=1e-5)


SAMPLERS = {
  'ddim': lambda d, rng, steps: samplers.ddim_sample(d, rng, (2, 3), steps=steps, trajectory=2),
  'ddpm': lambda d, rng, steps: samplers.ddpm_sample(d, rng, (2, 3), steps=steps),
  'euler': lambda d, rng, steps: samplers.ode_sample(d, rng, (2, 3), steps=steps, method='euler'),
  'heun': lambda d, rng, steps: samplers.ode_sample(d, rng, (2, 3), objective='eps', steps=steps),
  'invert': lambda d, rng, steps: samplers.ddim_invert(d, jnp.ones((2, 3)), steps=steps),
  'inpaint': lambda d, rng, steps: samplers.inpaint_sample(
    d, rng, jnp.ones((2, 3)), jnp.array([1.0, 0.0, 0.0]), jnp.array([0, 1]), steps=steps,
    guidance=2.0, null_label=5,
  ),
}  # fmt: skip


@pytest.mark.parametrize('name', SAMPLERS)
def test_samplers_compile_once_whatever_the_number_of_steps(name):
  traces = []

  def denoise(z, t, labels):
    traces.append(1)  # runs once per trace, never per step of a compiled loop
    return 0.1 * z * t[:, None]

  counts = []
  for steps in (3, 9):
    sample = jax.jit(lambda rng: SAMPLERS[name](denoise, rng, steps))
    traces.clear()
    first = sample(KEY)
    counts.append(len(traces))
    second = sample(jax.random.PRNGKey(1))
    assert len(traces) == counts[-1]  # the second call reuses the compiled loop
    assert first.x.shape == second.x.shape == (2, 3)
    assert np.all(np.isfinite(second.x))
  assert counts[0] == counts[1] <= 3
