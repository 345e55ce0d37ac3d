"""Continuous-time noise schedules for diffusion models, as log-SNR functions (jax.numpy only).

Conventions: time ``t`` runs over [0, 1], from data (t = 0) to noise (t = 1). A schedule is
its log signal-to-noise ratio ``lambda(t) = log(alpha_t^2 / sigma_t^2)``, strictly
decreasing from ``logsnr_max`` at t = 0 to ``logsnr_min`` at t = 1; both ends are finite
and explicit, so every schedule is clipped the same way. The forward process is variance
preserving, ``z_t = alpha_t x + sigma_t eps`` with ``alpha_t^2 = sigmoid(lambda)`` and
``sigma_t^2 = sigmoid(-lambda)`` (so alpha^2 + sigma^2 = 1). ``Schedule.kind``:
  'cosine': Nichol & Dhariwal's (2021) ``alpha^2 = cos^2(phi)``, i.e.
    ``lambda = -2 log tan(phi)``, with the angle phi running linearly in t between the
    angles of the two ends. Their offset s = 0.008 and beta clipping at 0.999 were ways
    to keep the ends finite; here the ends are the endpoints themselves (s = 0.008 is
    logsnr_max ~ 8.77). Defaults +-15, as in Hoogeboom et al. 2023 ("simple diffusion").
  'linear': DDPM's (Ho et al. 2020) beta_i = linspace(1e-4, 0.02, 1000) in continuous
    time. t = 0 and t = 1 are DDPM's first and last steps (defaults: their exact
    log-SNRs, ~9.21 and ~-10.12) and step i sits at t = (i - 1) / 999; ``-log abar(t)``
    is quadratic in t, the interpolant of DDPM's partial sums of beta, so its derivative
    (the continuous beta) grows linearly, by the factor (beta_1000 - d/2) / (beta_1 + d/2)
    ~ 182 with d the step of the betas. ``lambda = -log(expm1(-log abar))`` then matches
    the discrete schedule within 0.011 at every step.
  'linear_logsnr': VDM's fixed schedule (Kingma et al. 2021): lambda linear in t. VDM
    writes gamma = -lambda from gamma_min = -13.3 to gamma_max = 5, i.e. defaults
    logsnr_max = 13.3, logsnr_min = -5.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

Array = jnp.ndarray
LogSNRFn = Callable[[Array], Array]

KINDS = ('cosine', 'linear', 'linear_logsnr')

# DDPM's discrete schedule, the shape and default ends of 'linear'.
DDPM_BETA_START, DDPM_BETA_END, DDPM_STEPS = 1e-4, 0.02, 1000
_DDPM_BETA_STEP = (DDPM_BETA_END - DDPM_BETA_START) / (DDPM_STEPS - 1)
# q'(1) / q'(0) of 'linear': the partial sums' interpolant has slope beta_i - d/2 at step i.
_LINEAR_SLOPE_RATIO = (DDPM_BETA_END - _DDPM_BETA_STEP / 2) / (
  DDPM_BETA_START + _DDPM_BETA_STEP / 2
)


def ddpm_logsnr_endpoints(
  beta_start: float = DDPM_BETA_START, beta_end: float = DDPM_BETA_END, num_steps: int = DDPM_STEPS
) -> tuple[float, float]:
  """``(lambda_1, lambda_T)``: the log-SNRs of a discrete linear-beta schedule's first and
  last steps, ``log(abar / (1 - abar))`` with ``abar_i = prod_{j <= i} (1 - beta_j)``."""
  betas = np.linspace(beta_start, beta_end, num_steps, dtype=np.float64)
  neg_log_abar = np.cumsum(-np.log1p(-betas))
  logsnr = -np.log(np.expm1(neg_log_abar))
  return float(logsnr[0]), float(logsnr[-1])


_DEFAULT_ENDS = {
  'cosine': (15.0, -15.0),
  'linear': ddpm_logsnr_endpoints(),
  'linear_logsnr': (13.3, -5.0),
}


@dataclasses.dataclass(frozen=True)
class Schedule:
  """A log-SNR schedule: ``Schedule(kind)(t) -> lambda(t)``, elementwise over any shape.

  ``logsnr_max`` (at t = 0) and ``logsnr_min`` (at t = 1) default to the kind's values
  (module docstring). Frozen and hashable, so it can be a static argument or be closed
  over by a jitted function.
  """

  kind: str = 'cosine'
  logsnr_max: float | None = None
  logsnr_min: float | None = None

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f'unknown noise schedule {self.kind!r}; expected one of {KINDS}')
    default_max, default_min = _DEFAULT_ENDS[self.kind]
    if self.logsnr_max is None:
      object.__setattr__(self, 'logsnr_max', float(default_max))
    if self.logsnr_min is None:
      object.__setattr__(self, 'logsnr_min', float(default_min))
    if not math.isfinite(self.logsnr_max) or not math.isfinite(self.logsnr_min):
      raise ValueError(
        f'log-SNR endpoints must be finite, got {self.logsnr_max}, {self.logsnr_min}'
      )
    if not self.logsnr_max > self.logsnr_min:
      raise ValueError(
        f'logsnr_max={self.logsnr_max} must exceed logsnr_min={self.logsnr_min}: '
        'the log-SNR decreases from data (t=0) to noise (t=1)'
      )

  def __call__(self, t: Array) -> Array:
    t = jnp.asarray(t, jnp.result_type(t, jnp.float32))
    hi, lo = self.logsnr_max, self.logsnr_min
    if self.kind == 'linear_logsnr':
      return hi + (lo - hi) * t
    if self.kind == 'cosine':
      # alpha^2 = cos^2(phi) and sigma^2 = sin^2(phi) give lambda = -2 log tan(phi);
      # phi of each end is arctan(exp(-lambda / 2)).
      phi_0, phi_1 = math.atan(math.exp(-0.5 * hi)), math.atan(math.exp(-0.5 * lo))
      return -2.0 * jnp.log(jnp.tan(phi_0 + (phi_1 - phi_0) * t))
    # 'linear': q(t) = -log abar(t) = log(1 + exp(-lambda)), quadratic, pinned to both
    # ends, with DDPM's growth of beta from the first step to the last.
    q_0, q_1 = math.log1p(math.exp(-hi)), math.log1p(math.exp(-lo))
    ratio = _LINEAR_SLOPE_RATIO
    slope_0 = 2.0 * (q_1 - q_0) / (1.0 + ratio)
    q = q_0 + slope_0 * t + 0.5 * (ratio - 1.0) * slope_0 * jnp.square(t)
    # expm1 keeps the clean end (q ~ 1e-4) accurate, where 1 - abar would cancel.
    return -jnp.log(jnp.expm1(q))


def alpha_sigma(logsnr: Array) -> tuple[Array, Array]:
  """``(alpha, sigma) = (sqrt(sigmoid(lambda)), sqrt(sigmoid(-lambda)))``, variance preserving."""
  return jnp.sqrt(jax.nn.sigmoid(logsnr)), jnp.sqrt(jax.nn.sigmoid(-logsnr))


def logsnr_and_derivative(schedule: LogSNRFn, t: Array) -> tuple[Array, Array]:
  """``(lambda(t), d lambda / dt)``, elementwise, for any elementwise log-SNR function
  (a ``Schedule`` or a learned one); the derivative is exact (forward-mode autodiff)."""
  t = jnp.asarray(t, jnp.result_type(t, jnp.float32))
  return jax.jvp(schedule, (t,), (jnp.ones_like(t),))
