"""Diffusion and flow-matching objectives (jax.numpy only): prediction conversions, losses.

Conventions:
  Time t in [0, 1] runs from data (t = 0) to noise (t = 1), as in diffusion_schedules.
  The diffusion objectives ('eps', 'v', 'vdm') use the variance-preserving path
  ``z_t = alpha_t x + sigma_t eps`` of a ``Schedule``; 'flow' uses the conditional optimal
  transport path ``z_t = (1 - t) x + t eps`` (alpha_t = 1 - t, sigma_t = t; rectified
  flow, Lipman et al. 2023 / Liu et al. 2023) in the same direction, so its velocity is
  ``u = dz_t / dt = eps - x`` and sampling integrates from t = 1 down to t = 0.
  The model is any function ``denoise(z, t, labels) -> output``: z ``[B, ...]``, t ``[B]``
  in [0, 1] (the time, not the log-SNR: a model that wants lambda computes schedule(t)),
  labels ``[B]`` ints or None; the output has z's shape and is the noise eps for 'eps'
  and 'vdm', ``v = alpha eps - sigma x`` (Salimans & Ho 2022) for 'v', and the velocity u
  for 'flow'. ``output_to_x0_eps`` turns any of them into (x0, eps) estimates.
  Every loss returns one value per example, ``[B]``; the batch mean is the caller's.
  ``rng`` is one key for the batch, or one key per example ``[B]`` (e.g.
  ``base.per_example_keys``): then every draw of an example (its t, its noise) comes from
  its own key, whatever else is in the batch, which is what makes data-parallel
  strategies agree. VDM's antithetic times stratify over the batch and need one key;
  ``stratified_times`` stratifies per-example draws by the examples' batch positions, and
  every loss takes such times as ``t``.
  Data x is float ``[B, ...]`` in [-1, 1]. The VDM likelihood (``vdm_terms``) assumes VDM's
  scaling: x takes one of K levels at the bin centres ``(2k + 1) / K - 1`` (K = 256 for
  8-bit data, 2 for binarized); ``centered_levels`` maps [0, 1] images (k / (K - 1)) there.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from genjax.tasks.diffusion_schedules import LogSNRFn, Schedule, alpha_sigma
from genjax.tasks.diffusion_schedules import logsnr_and_derivative

Array = jnp.ndarray
DenoiseFn = Callable[[Array, Array, Array | None], Array]

OBJECTIVES = ('eps', 'v', 'vdm', 'flow')
# VDM's fixed schedule: its loss has low variance where lambda is linear in t.
VDM_SCHEDULE = Schedule('linear_logsnr')


def check_objective(objective: str) -> None:
  if objective not in OBJECTIVES:
    raise ValueError(f'unknown diffusion objective {objective!r}; expected one of {OBJECTIVES}')


def _expand(coef: Array, x: Array) -> Array:
  """Per-example coefficients ``[B]`` (or scalars) as ``[B, 1, ...]`` against x ``[B, ...]``."""
  coef = jnp.asarray(coef)
  return coef.reshape(coef.shape + (1,) * (x.ndim - coef.ndim))


# Conversions between predictions at one point z = alpha x0 + sigma eps. alpha and sigma
# are scalars or per-example [B]. The v forms use alpha^2 + sigma^2 = 1 (VP paths only).
def x0_from_eps(z: Array, eps: Array, alpha: Array, sigma: Array) -> Array:
  """``x0 = (z - sigma eps) / alpha``."""
  return (z - _expand(sigma, z) * eps) / _expand(alpha, z)


def eps_from_x0(z: Array, x0: Array, alpha: Array, sigma: Array) -> Array:
  """``eps = (z - alpha x0) / sigma``."""
  return (z - _expand(alpha, z) * x0) / _expand(sigma, z)


def v_from_x0_eps(x0: Array, eps: Array, alpha: Array, sigma: Array) -> Array:
  """``v = alpha eps - sigma x0``."""
  return _expand(alpha, x0) * eps - _expand(sigma, x0) * x0


def x0_from_v(z: Array, v: Array, alpha: Array, sigma: Array) -> Array:
  """``x0 = alpha z - sigma v`` (variance-preserving paths)."""
  return _expand(alpha, z) * z - _expand(sigma, z) * v


def eps_from_v(z: Array, v: Array, alpha: Array, sigma: Array) -> Array:
  """``eps = sigma z + alpha v`` (variance-preserving paths)."""
  return _expand(sigma, z) * z + _expand(alpha, z) * v


def path_alpha_sigma(objective: str, schedule: LogSNRFn, t: Array) -> tuple[Array, Array]:
  """``(alpha_t, sigma_t)`` of the objective's path: ``(1 - t, t)`` for 'flow', else VP."""
  check_objective(objective)
  if objective == 'flow':
    t = jnp.asarray(t, jnp.result_type(t, jnp.float32))
    return 1.0 - t, t
  return alpha_sigma(schedule(t))


def diffuse(x: Array, t: Array, eps: Array, objective: str, schedule: LogSNRFn) -> Array:
  """The noised data ``z_t = alpha_t x + sigma_t eps`` on the objective's path; t ``[B]``."""
  alpha, sigma = path_alpha_sigma(objective, schedule, t)
  return _expand(alpha, x) * x + _expand(sigma, x) * eps


def output_to_x0_eps(
  output: Array, z: Array, t: Array, objective: str, schedule: LogSNRFn
) -> tuple[Array, Array]:
  """The model's raw output at (z, t) as ``(x0, eps)`` estimates, for any objective.

  'flow': ``x0 = z - t u`` and ``eps = z + (1 - t) u``. 'v': through alpha and sigma.
  'eps' / 'vdm': the output is eps. Samplers use this and so work for every objective.
  """
  check_objective(objective)
  if objective == 'flow':
    t = _expand(t, z)
    return z - t * output, z + (1.0 - t) * output
  alpha, sigma = path_alpha_sigma(objective, schedule, t)
  if objective == 'v':
    return x0_from_v(z, output, alpha, sigma), eps_from_v(z, output, alpha, sigma)
  return x0_from_eps(z, output, alpha, sigma), output


def one_key_per_example(rng: Array) -> bool:
  """Whether ``rng`` is a batch of keys, one per example, rather than one key."""
  if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
    return rng.ndim > 0
  return rng.ndim > 1  # raw uint32 keys: one is [2]


def split(rng: Array) -> tuple[Array, Array]:
  """Two independent keys (two [B] batches of keys, from per-example keys)."""
  if one_key_per_example(rng):
    a, b = jnp.moveaxis(jax.vmap(jax.random.split)(rng), 1, 0)
    return a, b
  a, b = jax.random.split(rng)
  return a, b


def normal(rng: Array, shape: tuple[int, ...], dtype=jnp.float32) -> Array:
  """N(0, 1) of ``shape = (B, ...)``; with per-example keys, row i from key i."""
  if one_key_per_example(rng):
    return jax.vmap(lambda key: jax.random.normal(key, shape[1:], dtype))(rng)
  return jax.random.normal(rng, shape, dtype)


def uniform(rng: Array, shape: tuple[int, ...]) -> Array:
  """U[0, 1) of ``shape = (B, ...)``; with per-example keys, row i from key i."""
  if one_key_per_example(rng):
    return jax.vmap(lambda key: jax.random.uniform(key, shape[1:]))(rng)
  return jax.random.uniform(rng, shape)


def sample_times(rng: Array, batch: int, antithetic: bool = False) -> Array:
  """Training times ``[B]`` uniform on [0, 1). ``antithetic``: VDM's low-discrepancy draw,
  one uniform offset shifted by i / B (mod 1), which stratifies t over the batch and cuts
  the variance of the loss's t-integral (so it takes one key, not one per example)."""
  if antithetic:
    if one_key_per_example(rng):
      raise ValueError(
        'antithetic times stratify over the batch: pass one key, or antithetic=False '
        'with per-example keys'
      )
    return jnp.mod(jax.random.uniform(rng, ()) + jnp.arange(batch) / batch, 1.0)
  return uniform(rng, (batch,))


def stratified_times(rng: Array, positions: Array, batch_size: int) -> Array:
  """VDM's low-discrepancy times for examples at ``positions`` ``[B]`` of a global batch
  of ``batch_size``: ``(u + position / batch_size) mod 1``, one offset u from ``rng`` (one
  key, the same on every device). The whole batch covers [0, 1) evenly, as
  ``sample_times(antithetic=True)``'s does, and each example's time depends only on its
  position: the same whichever device holds it."""
  return jnp.mod(jax.random.uniform(rng, ()) + positions / batch_size, 1.0)


def _times(t_rng, x, antithetic, t):
  """``t`` if given (t_rng is still consumed, so the noise is the same either way)."""
  return sample_times(t_rng, x.shape[0], antithetic) if t is None else t


def _noised(x, rng, objective, schedule, antithetic, t):
  t_rng, eps_rng = split(rng)
  t = _times(t_rng, x, antithetic, t)
  eps = normal(eps_rng, x.shape, x.dtype)
  return t, eps, diffuse(x, t, eps, objective, schedule)


def _per_example_mean(values: Array) -> Array:
  return jnp.mean(values.reshape(values.shape[0], -1), axis=-1)


def _per_example_sum(values: Array) -> Array:
  return jnp.sum(values.reshape(values.shape[0], -1), axis=-1)


def eps_loss(denoise, x, rng, labels=None, schedule=Schedule(), antithetic=False, t=None) -> Array:
  """DDPM's noise-prediction loss (Ho et al. 2020) in continuous time: the mean over
  dimensions of ``(eps_hat - eps)^2`` at t ~ U[0, 1] (or the given ``t``), ``[B]``."""
  t, eps, z = _noised(x, rng, 'eps', schedule, antithetic, t)
  return _per_example_mean(jnp.square(denoise(z, t, labels) - eps))


def v_loss(denoise, x, rng, labels=None, schedule=Schedule(), antithetic=False, t=None) -> Array:
  """The v-prediction loss (Salimans & Ho 2022): mean of ``(v_hat - v)^2``, ``[B]``."""
  t, eps, z = _noised(x, rng, 'v', schedule, antithetic, t)
  alpha, sigma = path_alpha_sigma('v', schedule, t)
  target = v_from_x0_eps(x, eps, alpha, sigma)
  return _per_example_mean(jnp.square(denoise(z, t, labels) - target))


def flow_loss(denoise, x, rng, labels=None, schedule=None, antithetic=False, t=None) -> Array:
  """Flow matching with the OT path: mean of ``(u_hat - (eps - x))^2``, ``[B]``.

  ``schedule`` is unused (the path has none); it is accepted so that every loss takes
  the same arguments.
  """
  del schedule
  t, eps, z = _noised(x, rng, 'flow', None, antithetic, t)
  return _per_example_mean(jnp.square(denoise(z, t, labels) - (eps - x)))


def vdm_diffusion_loss(
  denoise, x, rng, labels=None, schedule=VDM_SCHEDULE, antithetic=True, t=None
) -> Array:
  """VDM's continuous-time diffusion loss (Kingma et al. 2021, eq. 17), nats ``[B]``:
  ``0.5 * (-dlambda/dt) * ||eps - eps_hat||^2`` summed over dimensions, t ~ U[0, 1].

  Its expectation over t is ``0.5 * integral ||eps - eps_hat||^2 dlambda`` from
  logsnr_min to logsnr_max: only the ends of the schedule, not its shape, change it.
  """
  t_rng, eps_rng = split(rng)
  t = _times(t_rng, x, antithetic, t)
  logsnr, dlogsnr_dt = logsnr_and_derivative(schedule, t)
  alpha, sigma = alpha_sigma(logsnr)
  eps = normal(eps_rng, x.shape, x.dtype)
  z = _expand(alpha, x) * x + _expand(sigma, x) * eps
  squared_error = _per_example_sum(jnp.square(eps - denoise(z, t, labels)))
  return 0.5 * (-dlogsnr_dt) * squared_error


def vdm_prior_loss(x: Array, schedule: LogSNRFn = VDM_SCHEDULE) -> Array:
  """``KL(q(z_1 | x) || N(0, I))`` in nats, ``[B]``: the mismatch of the noisiest state."""
  alpha_sq = jax.nn.sigmoid(schedule(1.0))
  # sigma^2 - 1 - log sigma^2 with sigma^2 = 1 - alpha^2, in a form that keeps its
  # ~alpha^4 / 2 size when alpha^2 is below float32's resolution of 1.
  per_dim = 0.5 * (alpha_sq * jnp.square(x) - alpha_sq - jnp.log1p(-alpha_sq))
  return _per_example_sum(per_dim)


def centered_levels(x01: Array, num_levels: int = 256) -> Array:
  """Images in [0, 1] holding ``k / (K - 1)`` -> VDM's bin centres ``(2k + 1) / K - 1``."""
  k = jnp.round(x01 * (num_levels - 1))
  return (2.0 * k + 1.0) / num_levels - 1.0


def vdm_reconstruction_loss(
  x: Array, rng: Array, schedule: LogSNRFn = VDM_SCHEDULE, num_levels: int | None = 256
) -> Array:
  """``-log p(x | z_0)`` in nats, ``[B]``, with z_0 ~ q(z_0 | x) (one sample).

  ``num_levels=K``: VDM's decoder, a distribution over the K bin centres with logits
  ``-(z_0 / alpha_0 - c_k)^2 / (2 sigma_0^2 / alpha_0^2)``, independent per dimension; x
  must be on those centres. ``num_levels=None``: a continuous Gaussian likelihood
  ``N(x; z_0 / alpha_0, sigma_0^2 / alpha_0^2)`` (a density: for continuous data).
  """
  logsnr_0 = schedule(0.0)
  # z_0 / alpha_0 = x + (sigma_0 / alpha_0) eps, and sigma_0^2 / alpha_0^2 = exp(-lambda_0).
  noise_scale = jnp.exp(-0.5 * logsnr_0)
  z_rescaled = x + noise_scale * normal(rng, x.shape, x.dtype)
  if num_levels is None:
    nll = 0.5 * (math.log(2 * math.pi) - logsnr_0) + 0.5 * jnp.square(
      (x - z_rescaled) / noise_scale
    )
    return _per_example_sum(nll)
  centres = (2.0 * jnp.arange(num_levels) + 1.0) / num_levels - 1.0
  k = jnp.clip(jnp.round((x + 1.0) * num_levels / 2 - 0.5), 0, num_levels - 1).astype(jnp.int32)
  logits = -0.5 * jnp.square((z_rescaled[..., None] - centres) / noise_scale)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  return -_per_example_sum(jnp.take_along_axis(log_probs, k[..., None], axis=-1)[..., 0])


def vdm_terms(
  denoise, x, rng, labels=None, schedule=VDM_SCHEDULE, num_levels=256, antithetic=True, t=None
) -> dict[str, Array]:
  """VDM's three terms of ``-ELBO``, each nats ``[B]``: 'diffusion', 'prior',
  'reconstruction'. Their sum bounds ``-log p(x)``."""
  diffusion_rng, reconstruction_rng = split(rng)
  return {
    'diffusion': vdm_diffusion_loss(denoise, x, diffusion_rng, labels, schedule, antithetic, t),
    'prior': vdm_prior_loss(x, schedule),
    'reconstruction': vdm_reconstruction_loss(x, reconstruction_rng, schedule, num_levels),
  }


def bits_per_dim(nats: Array, x: Array) -> Array:
  """Per-example nats ``[B]`` -> bits per dimension: ``nats / (prod(x.shape[1:]) ln 2)``."""
  return nats / (math.prod(x.shape[1:]) * math.log(2.0))


def vdm_loss(
  denoise, x, rng, labels=None, schedule=VDM_SCHEDULE, num_levels=256, antithetic=True, t=None
) -> Array:
  """VDM's ``-ELBO`` in bits per dimension, ``[B]`` (the sum of ``vdm_terms``)."""
  terms = vdm_terms(denoise, x, rng, labels, schedule, num_levels, antithetic, t)
  return bits_per_dim(sum(terms.values()), x)


_LOSSES = {'eps': eps_loss, 'v': v_loss, 'vdm': vdm_loss, 'flow': flow_loss}


def loss(objective: str, denoise: DenoiseFn, x: Array, rng: Array, labels=None, **kwargs) -> Array:
  """The objective's per-example loss ``[B]`` (``eps_loss``, ``v_loss``, ``vdm_loss`` in
  bits/dim, ``flow_loss``); keyword arguments go to it (schedule, antithetic, t, ...)."""
  check_objective(objective)
  return _LOSSES[objective](denoise, x, rng, labels, **kwargs)


def drop_labels(rng: Array, labels: Array, null_label: int, rate: float) -> Array:
  """Labels with each replaced by ``null_label`` with probability ``rate``: the training
  side of classifier-free guidance, one model learning both conditional and not. ``rng``:
  one key, or one per example."""
  return jnp.where(uniform(rng, labels.shape) < rate, null_label, labels)
