"""Pure loss and log-density functions for autoencoders and VAEs (jax.numpy only).

Conventions: images are float32 ``[..., H, W, C]`` in [0, 1]; a log-likelihood sums over
the trailing ``event_ndims`` axes (the image: 3), so leading axes pass through -- a batch
``[B]``, or importance samples and a batch ``[K, B]``. Latent densities sum over the
last axis. Values are in nats; divide by ``H * W * C * ln 2`` for bits per dimension.
"""

from __future__ import annotations

import math
from typing import Mapping

import jax.numpy as jnp
from jax.nn import sigmoid, softplus
from jax.scipy.special import log_ndtr

Array = jnp.ndarray

_LOG_2PI = math.log(2.0 * math.pi)


def _sum_event(values: Array, event_ndims: int) -> Array:
  return jnp.sum(values, axis=tuple(range(-event_ndims, 0)))


def bernoulli_log_likelihood(logits: Array, x: Array, event_ndims: int = 3) -> Array:
  """log p(x | logits) of independent Bernoulli pixels, summed over the image.

  ``logits, x: [..., H, W, C] -> [...]``. Exact for binary x; for x in [0, 1] it is
  the (unnormalised) cross-entropy that AE/VAE papers report on grey-level MNIST.
  Uses ``log sigmoid(l) = -softplus(-l)``, stable for any logit.
  """
  log_p = -softplus(-logits) * x - softplus(logits) * (1.0 - x)
  return _sum_event(log_p, event_ndims)


def gaussian_log_likelihood(mean: Array, log_scale: Array, x: Array, event_ndims: int = 3) -> Array:
  """log N(x; mean, exp(log_scale)^2), a continuous density, summed over the image.

  ``mean, x: [..., H, W, C]``, ``log_scale`` broadcastable to them (e.g. ``[C]``)
  ``-> [...]``. A density on R, not a probability of 8-bit pixels: not comparable
  with discrete likelihoods (see discretized_gaussian_log_likelihood).
  """
  z = (x - mean) * jnp.exp(-log_scale)
  log_p = -0.5 * jnp.square(z) - log_scale - 0.5 * _LOG_2PI
  return _sum_event(log_p, event_ndims)


def _log_normal_mass(lower: Array, upper: Array) -> Array:
  """log(Phi(upper) - Phi(lower)) for standardised bounds lower < upper, stably.

  Both bounds in the upper tail are mirrored to the lower one, where log_ndtr is
  accurate; then log(Phi(b) - Phi(a)) = log Phi(b) + log(1 - exp(log Phi(a) - log Phi(b))).
  """
  flip = lower + upper > 0
  a = jnp.where(flip, -upper, lower)
  b = jnp.where(flip, -lower, upper)
  log_b = log_ndtr(b)
  return log_b + jnp.log(-jnp.expm1(log_ndtr(a) - log_b))


def discretized_gaussian_log_likelihood(
  mean: Array, log_scale: Array, x: Array, num_bins: int = 256, event_ndims: int = 3
) -> Array:
  """log P(x) of 8-bit pixels under a Gaussian integrated over each pixel's bin.

  x holds ``k / (num_bins - 1)`` for integer k (uint8 / 255). Each value owns the bin
  ``x +- 1 / (2 * (num_bins - 1))``; the first and last bins extend to -inf and +inf,
  so the probabilities of the ``num_bins`` values sum to 1 (as in PixelCNN++ and DDPM).
  This is a true probability (log P <= 0 per pixel): the honest likelihood for colour
  images, comparable across models; in bits/dim it is ``-log P / (H W C ln 2)``.
  ``mean, x: [..., H, W, C]``, ``log_scale`` broadcastable ``-> [...]``.
  """
  half_bin = 0.5 / (num_bins - 1)
  inv_scale = jnp.exp(-log_scale)
  lower = (x - half_bin - mean) * inv_scale
  upper = (x + half_bin - mean) * inv_scale
  # Edge bins use one CDF; every branch stays finite, so jnp.where passes clean gradients.
  log_p = jnp.where(
    x < half_bin,
    log_ndtr(upper),
    jnp.where(x > 1.0 - half_bin, log_ndtr(-lower), _log_normal_mass(lower, upper)),
  )
  return _sum_event(log_p, event_ndims)


def decoder_log_likelihood(
  decoder_out: Array | Mapping[str, Array], x: Array, likelihood: str = 'bernoulli'
) -> Array:
  """log p(x | z) for a VAE decoder output ``[..., H, W, C]`` (see ``VAE.decode``) -> ``[...]``.

  likelihood: 'bernoulli' (decoder_out = logits), 'gaussian' or 'discretized_gaussian'
  (decoder_out = {'mean', 'log_scale'}).
  """
  if likelihood == 'bernoulli':
    return bernoulli_log_likelihood(decoder_out, x)
  if likelihood == 'gaussian':
    return gaussian_log_likelihood(decoder_out['mean'], decoder_out['log_scale'], x)
  if likelihood == 'discretized_gaussian':
    return discretized_gaussian_log_likelihood(decoder_out['mean'], decoder_out['log_scale'], x)
  raise ValueError(
    f'unknown likelihood {likelihood!r}; expected one of '
    "('bernoulli', 'gaussian', 'discretized_gaussian')"
  )


def gaussian_kl(mean: Array, logvar: Array) -> Array:
  """KL(N(mean, diag exp(logvar)) || N(0, I)) in closed form: ``[..., D] -> [...]``."""
  return 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar, axis=-1)


def gaussian_log_prob(z: Array, mean: Array, logvar: Array) -> Array:
  """log N(z; mean, diag exp(logvar)): ``[..., D] -> [...]`` (e.g. log q(z|x))."""
  log_p = -0.5 * (jnp.square(z - mean) * jnp.exp(-logvar) + logvar + _LOG_2PI)
  return jnp.sum(log_p, axis=-1)


def standard_normal_log_prob(z: Array) -> Array:
  """log N(z; 0, I): ``[..., D] -> [...]`` (the VAE prior p(z))."""
  return jnp.sum(-0.5 * (jnp.square(z) + _LOG_2PI), axis=-1)


def elbo(log_likelihood: Array, kl: Array) -> Array:
  """Evidence lower bound ``log p(x|z) - KL(q(z|x) || p(z))``, elementwise ``[B]``."""
  return log_likelihood - kl


def negative_elbo_loss(
  vae_outputs: Mapping[str, Array], x: Array, likelihood: str = 'bernoulli', kl_weight: float = 1.0
) -> Array:
  """Scalar loss: the batch mean of ``-(log p(x|z) - kl_weight * KL)``.

  ``vae_outputs`` is what ``VAE.__call__`` returns (keys 'out', 'mean', 'logvar');
  x ``[B, H, W, C]``. ``kl_weight != 1`` gives a beta-VAE (no longer a bound).
  """
  log_likelihood = decoder_log_likelihood(vae_outputs['out'], x, likelihood)
  kl = gaussian_kl(vae_outputs['mean'], vae_outputs['logvar'])
  return -jnp.mean(elbo(log_likelihood, kl_weight * kl))


def sigmoid_cross_entropy(logits: Array, target: Array, event_ndims: int = 3) -> Array:
  """Binary cross-entropy with logits, averaged over pixels: ``[..., H, W, C] -> [...]``.

  Equals ``-bernoulli_log_likelihood / num_pixels``; target may be continuous in [0, 1].
  """
  num_pixels = math.prod(logits.shape[-event_ndims:])
  return -bernoulli_log_likelihood(logits, target, event_ndims) / num_pixels


def mse_loss(pred: Array, target: Array, event_ndims: int = 3) -> Array:
  """Mean squared error over pixels: ``[..., H, W, C] -> [...]``."""
  return jnp.mean(jnp.square(pred - target), axis=tuple(range(-event_ndims, 0)))


def reconstruction_loss(logits: Array, target: Array, kind: str = 'bce') -> Array:
  """Per-example autoencoder loss from logits ``[B, H, W, C]`` -> ``[B]``, pixel mean.

  kind: 'bce' (sigmoid cross-entropy) or 'mse' (squared error of ``sigmoid(logits)``).
  """
  if kind == 'bce':
    return sigmoid_cross_entropy(logits, target)
  if kind == 'mse':
    return mse_loss(sigmoid(logits), target)
  raise ValueError(f"unknown reconstruction loss {kind!r}; expected 'bce' or 'mse'")
