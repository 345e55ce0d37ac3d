"""Samplers for diffusion and flow-matching models (jax.numpy only): DDPM, DDIM, ODEs.

Conventions (those of diffusion_objectives): ``denoise(z, t, labels) -> output`` with t
``[B]``; time runs from t = 1 (noise) to t = 0 (data) over a uniform grid
``t_i = 1 - i / steps``, ``steps`` a static int. Each sampler is one ``lax.fori_loop``,
so it traces ``denoise`` a fixed number of times whatever ``steps`` is, and compiles once
under ``jax.jit`` (bind the parameters in a closure inside the jitted function). It
starts from ``z_1 ~ N(0, I)`` (exact for 'flow'; for a VP schedule the marginal is
``N(alpha_1 x, sigma_1^2)`` with sigma_1^2 = sigmoid(-logsnr_min) ~ 1) unless ``z_init``
is given, and returns the state at t = 0 (for VP, ``alpha_0 x + sigma_0 eps`` with
sigma_0 ~ 1e-3 at the default ends). Every sampler works for every objective, through
the (x0, eps) estimates of ``diffusion_guidance.Predictor``; ``clip_x0`` clips the x0
estimate to ``[-clip_x0, clip_x0]`` (the data range) and recomputes eps from it.

``guidance`` and ``null_label``: classifier-free guidance (diffusion_guidance; w = 0
unconditional, w = 1 conditional, one call on 2B), only at ``lo < t <= hi`` with
``guidance_interval=(lo, hi)``. ``nfe`` counts ``denoise`` calls.

``trajectory=K`` also returns K snapshots, at steps spread evenly from the first to the
last: ``{'t': [K], 'z': [K, B, ...], 'x0': [K, B, ...]}``, the state at t and the model's
x0 estimate from it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from genjax.tasks.diffusion_guidance import Predictor
from genjax.tasks.diffusion_objectives import DenoiseFn, check_objective
from genjax.tasks.diffusion_schedules import LogSNRFn, Schedule

Array = jnp.ndarray

ODE_METHODS = ('euler', 'heun')


class Samples(NamedTuple):
  x: Array  # the final state, [B, ...] (the latent z_1 for ddim_invert)
  nfe: int  # number of denoise calls
  trajectory: dict[str, Array] | None  # snapshots, when asked for


def _check(objective: str, steps: int, trajectory: int) -> None:
  check_objective(objective)
  if not isinstance(steps, int) or steps < 1:
    raise ValueError(f'steps must be a positive (static) int, got {steps!r}')
  if not 0 <= trajectory <= steps:
    raise ValueError(f'trajectory={trajectory} snapshots: expected 0 to steps={steps}')


def _empty_trajectory(k: int, steps: int, z: Array):
  if k == 0:
    return None
  record_steps = np.unique(np.round(np.linspace(0, steps - 1, k)).astype(np.int32))
  buffer = jnp.zeros((len(record_steps),) + z.shape, z.dtype)
  return {
    'step': jnp.asarray(record_steps),
    't': jnp.zeros(len(record_steps)),
    'z': buffer,
    'x0': buffer,
  }


def _record(traj, i, t, z, x0):
  if traj is None:
    return None
  slot = jnp.minimum(jnp.searchsorted(traj['step'], i), len(traj['step']) - 1)
  write = lambda tr: {
    'step': tr['step'],
    't': tr['t'].at[slot].set(t),
    'z': tr['z'].at[slot].set(z),
    'x0': tr['x0'].at[slot].set(x0),
  }
  return jax.lax.cond(traj['step'][slot] == i, write, lambda tr: tr, traj)


def _finish(traj):
  return None if traj is None else {k: v for k, v in traj.items() if k != 'step'}


def _init(rng, shape, z_init):
  return jax.random.normal(rng, shape) if z_init is None else z_init


def _ddim_step(model: Predictor, z, t, s, eta, rng):
  """From t to s < t: ``z_s = alpha_s x0 + sqrt(sigma_s^2 - c^2) eps + c xi`` with c eta
  times the std of q(z_s | z_t, x0) (Song et al. 2021): eta = 1 samples that posterior
  (DDPM's ancestral step), eta = 0 is deterministic."""
  x0, eps, _ = model.predict(z, t)
  (alpha_t, sigma_t), (alpha_s, sigma_s) = model.path(t), model.path(s)
  if isinstance(eta, (int, float)) and eta == 0:
    return alpha_s * x0 + sigma_s * eps, x0
  # sigma_{t|s}^2 = sigma_t^2 - (alpha_t / alpha_s)^2 sigma_s^2; rounding can dip below 0.
  var_t_given_s = jnp.maximum(jnp.square(sigma_t) - jnp.square(alpha_t / alpha_s * sigma_s), 0.0)
  c = eta * sigma_s / sigma_t * jnp.sqrt(var_t_given_s)
  direction = jnp.sqrt(jnp.maximum(jnp.square(sigma_s) - jnp.square(c), 0.0))
  return alpha_s * x0 + direction * eps + c * jax.random.normal(rng, z.shape, z.dtype), x0


def ddim_sample(
  denoise: DenoiseFn,
  rng: Array,
  shape: tuple[int, ...],
  labels: Array | None = None,
  *,
  objective: str = 'eps',
  schedule: LogSNRFn = Schedule(),
  steps: int = 50,
  eta: float = 0.0,
  guidance=None,
  null_label=None,
  guidance_interval: tuple[float, float] | None = None,
  clip_x0: float | None = None,
  trajectory: int = 0,
  z_init: Array | None = None,
) -> Samples:
  """DDIM (Song et al. 2021) with stochasticity eta: 0 deterministic (rng only draws z_1),
  1 ancestral DDPM sampling. nfe = steps. For 'flow', eta = 0 is exactly Euler."""
  _check(objective, steps, trajectory)
  model = Predictor(
    denoise, labels, objective, schedule, guidance, null_label, clip_x0, guidance_interval
  )
  init_rng, loop_rng = jax.random.split(rng)
  z = _init(init_rng, shape, z_init)

  def body(i, carry):
    z, traj = carry
    t, s = 1.0 - i / steps, 1.0 - (i + 1) / steps
    z_next, x0 = _ddim_step(model, z, t, s, eta, jax.random.fold_in(loop_rng, i))
    return z_next, _record(traj, i, t, z, x0)

  z, traj = jax.lax.fori_loop(0, steps, body, (z, _empty_trajectory(trajectory, steps, z)))
  return Samples(z, steps, _finish(traj))


def ddpm_sample(denoise: DenoiseFn, rng: Array, shape, labels=None, **kwargs) -> Samples:
  """Ancestral sampling (Ho et al. 2020): each step draws from the Gaussian posterior
  q(z_s | z_t, x0 = x0_hat); ``ddim_sample`` with eta = 1. nfe = steps."""
  if 'eta' in kwargs:
    raise ValueError('ddpm_sample is eta=1; call ddim_sample for another eta')
  return ddim_sample(denoise, rng, shape, labels, eta=1.0, **kwargs)


def num_function_evaluations(method: str, steps: int, euler_last_step: bool = True) -> int:
  """``denoise`` calls of ``ode_sample``: Euler 1 a step; Heun 2, but 1 on an Euler last step."""
  if method not in ODE_METHODS:
    raise ValueError(f'unknown ODE method {method!r}; expected one of {ODE_METHODS}')
  if method == 'euler':
    return steps
  return 2 * steps - 1 if euler_last_step else 2 * steps


def ode_sample(
  denoise: DenoiseFn,
  rng: Array,
  shape: tuple[int, ...],
  labels: Array | None = None,
  *,
  objective: str = 'flow',
  schedule: LogSNRFn = Schedule(),
  steps: int = 50,
  method: str = 'heun',
  euler_last_step: bool = True,
  guidance=None,
  null_label=None,
  guidance_interval: tuple[float, float] | None = None,
  clip_x0: float | None = None,
  trajectory: int = 0,
  z_init: Array | None = None,
) -> Samples:
  """Integrates ``dz/dt = velocity(z, t)`` from t = 1 to 0 with Euler or Heun steps in t.

  The velocity is the model's own for 'flow' and the probability-flow ODE's
  ``alpha'(t) x0_hat + sigma'(t) eps_hat`` for the diffusion objectives. Heun (trapezoid,
  as in Karras et al. 2022) is second order, exact for a velocity linear in t. With
  ``euler_last_step`` (the default) its last step is Euler, which spares a model call at
  t = 0, where the optimal flow velocity ``(z - x0) / t`` is singular; straight paths
  stay exact, a velocity linear in t does not. nfe: ``num_function_evaluations``.
  """
  _check(objective, steps, trajectory)
  nfe = num_function_evaluations(method, steps, euler_last_step)
  model = Predictor(
    denoise, labels, objective, schedule, guidance, null_label, clip_x0, guidance_interval
  )
  z = _init(rng, shape, z_init)

  traj = _empty_trajectory(trajectory, steps, z)
  if method == 'euler':

    def body(i, carry):
      z, traj = carry
      t, s = 1.0 - i / steps, 1.0 - (i + 1) / steps
      x0, _, velocity = model.predict(z, t)
      return z + (s - t) * velocity, _record(traj, i, t, z, x0)

    z, traj = jax.lax.fori_loop(0, steps, body, (z, traj))
    return Samples(z, nfe, _finish(traj))

  def heun_body(j, carry):
    """Evaluation j of the nfe: the first of step k = j // 2 at (z, t), or its second at
    (z + (s - t) v, s). One model call a loop iteration, not two (and a third in a cond
    for the Euler last step): the compiled sampler holds one copy of the model."""
    z, z_eval, velocity_t, traj = carry
    k, second = j // 2, j % 2 == 1
    t, s = 1.0 - k / steps, 1.0 - (k + 1) / steps
    x0, _, velocity = model.predict(z_eval, jnp.where(second, s, t))
    z_euler = z + (s - t) * velocity
    z_heun = z + (s - t) * 0.5 * (velocity_t + velocity)
    done = second | ((k == steps - 1) & euler_last_step)  # step k is complete
    z_next = jnp.where(second, z_heun, jnp.where(done, z_euler, z))
    traj = _record(traj, jnp.where(second, -1, k), t, z, x0)  # -1: no snapshot
    return z_next, jnp.where(done, z_next, z_euler), jnp.where(second, velocity_t, velocity), traj

  z, _, _, traj = jax.lax.fori_loop(0, nfe, heun_body, (z, z, jnp.zeros_like(z), traj))
  return Samples(z, nfe, _finish(traj))


def ddim_invert(
  denoise: DenoiseFn,
  x: Array,
  labels: Array | None = None,
  *,
  objective: str = 'eps',
  schedule: LogSNRFn = Schedule(),
  steps: int = 50,
  guidance=None,
  null_label=None,
  guidance_interval: tuple[float, float] | None = None,
) -> Samples:
  """DDIM inversion: x, taken as the state at t = 0, to a latent z_1, deterministically.

  Each step runs DDIM (eta = 0) forwards in time, ``z_s = alpha_s x0_hat + sigma_s eps_hat``
  for s > t with the estimates at (z_t, t). ``ddim_sample(..., z_init=latent)`` with the
  same settings decodes it back (closely, not exactly: each direction uses the estimates
  at its own start); interpolating between latents interpolates images. nfe = steps.
  """
  _check(objective, steps, 0)
  model = Predictor(
    denoise, labels, objective, schedule, guidance, null_label, None, guidance_interval
  )

  def body(i, z):
    t, s = i / steps, (i + 1) / steps
    x0, eps, _ = model.predict(z, t)
    alpha_s, sigma_s = model.path(s)
    return alpha_s * x0 + sigma_s * eps

  return Samples(jax.lax.fori_loop(0, steps, body, x), steps, None)


def inpaint_sample(
  denoise: DenoiseFn,
  rng: Array,
  x_known: Array,
  mask: Array,
  labels: Array | None = None,
  *,
  objective: str = 'eps',
  schedule: LogSNRFn = Schedule(),
  steps: int = 50,
  eta: float = 1.0,
  guidance=None,
  null_label=None,
  guidance_interval: tuple[float, float] | None = None,
  clip_x0: float | None = None,
  trajectory: int = 0,
) -> Samples:
  """Fills the region where ``mask == 0`` of ``x_known`` (RePaint, Lugmayr et al. 2022,
  without resampling): after each DDIM step to s, the known region (mask == 1, mask
  broadcastable to x_known) is replaced by a fresh ``alpha_s x_known + sigma_s xi``,
  so the model conditions on it; at the end it is x_known exactly. nfe = steps.
  """
  _check(objective, steps, trajectory)
  model = Predictor(
    denoise, labels, objective, schedule, guidance, null_label, clip_x0, guidance_interval
  )
  mask = jnp.broadcast_to(mask, x_known.shape).astype(x_known.dtype)

  def known_at(t, rng):
    alpha, sigma = model.path(t)
    return alpha * x_known + sigma * jax.random.normal(rng, x_known.shape, x_known.dtype)

  init_rng, known_rng, loop_rng = jax.random.split(rng, 3)
  z = jax.random.normal(init_rng, x_known.shape, x_known.dtype)
  z = mask * known_at(1.0, known_rng) + (1.0 - mask) * z

  def body(i, carry):
    z, traj = carry
    t, s = 1.0 - i / steps, 1.0 - (i + 1) / steps
    step_rng, known_rng = jax.random.split(jax.random.fold_in(loop_rng, i))
    z_next, x0 = _ddim_step(model, z, t, s, eta, step_rng)
    z_next = mask * known_at(s, known_rng) + (1.0 - mask) * z_next
    return z_next, _record(traj, i, t, z, x0)

  z, traj = jax.lax.fori_loop(0, steps, body, (z, _empty_trajectory(trajectory, steps, z)))
  return Samples(mask * x_known + (1.0 - mask) * z, steps, _finish(traj))
