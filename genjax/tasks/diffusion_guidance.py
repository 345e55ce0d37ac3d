"""Classifier-free guidance and the model's estimates as samplers use them (jax.numpy only).

Guidance (Ho & Salimans 2022) acts on the raw model output:
``guided = uncond + w * (cond - uncond)`` with ``w = guidance``: w = 0 is the
unconditional output, w = 1 the conditional one, w > 1 pushes further (papers that write
``(1 + w) cond - w uncond`` mean our w - 1). Every objective's output is affine in
(x0, eps) at fixed (z, t), so guiding the output guides the estimates alike. The
unconditional half uses ``labels == null_label``, the null class the model was trained
with (``diffusion_objectives.drop_labels``; usually num_classes); both halves go through
``denoise`` as one call on a batch of 2B. ``guidance=None`` is a plain call on B.

``guidance_interval=(lo, hi)`` guides only at times ``lo < t <= hi`` and runs the plain
conditional call elsewhere (Kynkäänniemi et al. 2024): guidance at the noisiest times
pulls every sample towards its class's typical image and costs variety, and near the data
it changes little but costs a second call.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from genjax.tasks.diffusion_objectives import DenoiseFn, output_to_x0_eps, path_alpha_sigma
from genjax.tasks.diffusion_schedules import LogSNRFn

Array = jnp.ndarray


def guided_output(
  denoise: DenoiseFn, z: Array, t: Array, labels: Array | None, guidance=None, null_label=None
) -> Array:
  """The model output at (z, t), with classifier-free guidance when ``guidance`` is set."""
  if guidance is None:
    return denoise(z, t, labels)
  if labels is None or null_label is None:
    raise ValueError('classifier-free guidance needs labels and the null_label of the model')
  batch = z.shape[0]
  # Each row's two calls side by side (rows 2i, 2i + 1), not one half after the other:
  # a batch split over devices then keeps both of a row's outputs on one device, and
  # combining them moves nothing between devices.
  pair = lambda a, b: jnp.stack([a, b], axis=1).reshape(2 * batch, *a.shape[1:])
  both = denoise(pair(z, z), pair(t, t), pair(labels, jnp.full_like(labels, null_label)))
  both = both.reshape(batch, 2, *both.shape[1:])
  cond, uncond = both[:, 0], both[:, 1]
  return uncond + guidance * (cond - uncond)


@dataclasses.dataclass(frozen=True)
class Predictor:
  """The model as a sampler sees it: ``predict(z, t) -> (x0, eps, velocity)`` at a scalar
  time t, with guidance applied and the output converted for the objective.

  ``clip_x0``: clip the x0 estimate to ``[-clip_x0, clip_x0]`` and recompute eps from it.
  ``guidance_interval``: ``(lo, hi)``, guide only at ``lo < t <= hi``; None, at every t.
  """

  denoise: DenoiseFn
  labels: Array | None
  objective: str
  schedule: LogSNRFn
  guidance: Any
  null_label: Any
  clip_x0: float | None
  guidance_interval: tuple[float, float] | None = None

  def path(self, t):
    return path_alpha_sigma(self.objective, self.schedule, t)

  def _output(self, z, t, t_batch):
    guided = lambda: guided_output(
      self.denoise, z, t_batch, self.labels, self.guidance, self.null_label
    )
    if self.guidance is None or self.guidance_interval is None:
      return guided()
    lo, hi = self.guidance_interval
    # One branch runs: outside the interval the batch of 2B is never computed.
    return jax.lax.cond((t > lo) & (t <= hi), guided, lambda: self.denoise(z, t_batch, self.labels))

  def predict(self, z, t):
    """``(x0, eps, velocity)`` at the scalar time t; velocity is dz/dt of the ODE."""
    t_batch = jnp.full((z.shape[0],), t, z.dtype)
    out = self._output(z, t, t_batch)
    x0, eps = output_to_x0_eps(out, z, t_batch, self.objective, self.schedule)
    alpha, sigma = self.path(t)
    if self.clip_x0 is not None:
      x0 = jnp.clip(x0, -self.clip_x0, self.clip_x0)
      eps = jnp.where(sigma > 0, (z - alpha * x0) / jnp.where(sigma > 0, sigma, 1.0), eps)
    if self.objective == 'flow' and self.clip_x0 is None:
      return x0, eps, out  # the output is the velocity itself
    # Along the path z = alpha x0 + sigma eps with x0, eps held: the DDIM / probability-
    # flow ODE (for VP it equals f z - g^2 score / 2 of Song et al. 2021).
    _, (dalpha, dsigma) = jax.jvp(self.path, (jnp.asarray(t, jnp.float32),), (jnp.ones(()),))
    return x0, eps, dalpha * x0 + dsigma * eps
