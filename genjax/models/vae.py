"""A variational autoencoder for images in [0, 1]: Gaussian q(z|x), N(0, I) prior.

The probability maths (log-likelihoods, KL, ELBO) lives in ``genjax.tasks.losses``;
this module only produces the distributions' parameters.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models.layers import (
  Activation,
  Decoder,
  Dtype,
  Encoder,
  check_images,
  prepare_image_model,
)

Array = jnp.ndarray

LIKELIHOODS = ('bernoulli', 'gaussian', 'discretized_gaussian')

# Range of the Gaussian decoder's per-channel log-scale. The floor stops a continuous
# Gaussian from collapsing onto constant pixels (its density grows without bound);
# exp(0) = 1 is already the width of the whole [0, 1] pixel range.
MIN_LOG_SCALE = math.log(1e-3)
MAX_LOG_SCALE = 0.0
INIT_LOG_SCALE = math.log(0.1)


def soft_clip(x: Array, low: float, high: float) -> Array:
  """Smoothly bounds ``x`` to [low, high] (to ~exp(low - high)); ~identity well inside.

  Unlike ``jnp.clip``, the gradient just past a bound is not zero, so a parameter that
  overshoots can come back.
  """
  x = low + nn.softplus(x - low)
  return high - nn.softplus(high - x)


class VAE(nn.Module):
  """Variational autoencoder; construct from keyword hyperparameters only.

  ::

      model = VAE(image_shape=(28, 28, 1), latent_dim=32, arch='conv')
      variables = model.init({'params': rng, 'sample': rng}, x)
      out = model.apply(variables, x, rngs={'sample': rng})
      # out = {'out': decoder output, 'mean': [B, D], 'logvar': [B, D], 'z': [B, D]}
      images = model.apply(variables, z, method='generate')   # [B, H, W, C] in [0, 1]

  Decoder output (``decode``), by ``likelihood``:
    'bernoulli': pixel logits, float32 ``[B, H, W, C]``.
    'gaussian' / 'discretized_gaussian': a dict ``{'mean': [B, H, W, C] in (0, 1),
      'log_scale': [C]}`` (one learned log standard deviation per channel, softly
      bounded to [log 1e-3, 0]); the two differ only in the density the loss uses
      (continuous, or integrated over 8-bit pixel bins: the honest one for colour).
  Score it with ``genjax.tasks.losses.decoder_log_likelihood(out, x, likelihood)``.

  ``apply`` is pure: the only randomness is the 'sample' rng stream (z in __call__).

  Attributes:
    image_shape: (height, width, channels) of the images.
    latent_dim: size of z.
    arch: 'conv' (stride-2 convs and their mirror) or 'mlp' (flattened pixels).
    widths: conv channels per stride-2 layer, encoder order ('conv' only); the image
      height and width must be divisible by 2**len(widths).
    hidden: dense layer sizes between the pixels/conv features and z (the decoder uses
      them in reverse); an int means one layer.
    likelihood: 'bernoulli', 'gaussian' or 'discretized_gaussian' (see above).
    activation: name of the hidden activation ('relu', 'gelu', ...).
    dtype: computation dtype (e.g. jnp.bfloat16); parameters and outputs stay float32.
  """

  image_shape: Sequence[int] = (28, 28, 1)
  latent_dim: int = 32
  arch: str = 'conv'
  widths: Sequence[int] = (32, 64)
  hidden: int | Sequence[int] = (512,)
  likelihood: str = 'bernoulli'
  activation: str | Activation = 'relu'
  dtype: Dtype = jnp.float32

  def __post_init__(self) -> None:
    prepare_image_model(self)
    if self.likelihood not in LIKELIHOODS:
      raise ValueError(f'unknown likelihood {self.likelihood!r}; expected one of {LIKELIHOODS}')
    super().__post_init__()

  def setup(self) -> None:
    # One encoder head gives both the mean and the log-variance of q(z|x).
    self.encoder = Encoder(
      self.arch,
      2 * self.latent_dim,
      widths=self.widths,
      hidden=self.hidden,
      activation=self.activation,
      dtype=self.dtype,
    )
    self.decoder = Decoder(
      self.arch,
      self.image_shape,
      widths=self.widths,
      hidden=self.hidden,
      activation=self.activation,
      dtype=self.dtype,
    )
    if self.likelihood != 'bernoulli':
      channels = int(self.image_shape[2])
      self.log_scale = self.param(
        'log_scale', nn.initializers.constant(INIT_LOG_SCALE), (channels,), jnp.float32
      )

  def encode(self, x: Array) -> tuple[Array, Array]:
    """Images ``[B, H, W, C]`` in [0, 1] -> ``(mean, logvar)`` of q(z|x), each ``[B, D]``."""
    check_images(x, self.image_shape)
    h = self.encoder(x).astype(jnp.float32)
    mean, logvar = jnp.split(h, 2, axis=-1)
    return mean, logvar

  def decode(self, z: Array) -> Array | dict[str, Array]:
    """Latents ``[B, D]`` -> decoder output (logits array, or Gaussian dict; see class)."""
    h = self.decoder(z).astype(jnp.float32)
    if self.likelihood == 'bernoulli':
      return h
    return {
      'mean': nn.sigmoid(h),
      'log_scale': soft_clip(self.log_scale, MIN_LOG_SCALE, MAX_LOG_SCALE),
    }

  def generate(self, z: Array) -> Array:
    """Latents ``[B, D]`` (e.g. from the N(0, I) prior) -> mean images ``[B, H, W, C]``.

    The decoder distribution's mean, in [0, 1]: ``sigmoid(logits)`` for Bernoulli,
    the Gaussian mean otherwise. Use ``decode`` for the full distribution.
    """
    out = self.decode(z)
    return nn.sigmoid(out) if self.likelihood == 'bernoulli' else out['mean']

  def __call__(self, x: Array) -> dict[str, Array | dict[str, Array]]:
    """Images ``[B, H, W, C]`` -> ``{'out', 'mean', 'logvar', 'z'}`` with one z ~ q(z|x).

    ``z = mean + exp(logvar / 2) * eps`` (reparameterised), eps from the 'sample' rng.
    """
    mean, logvar = self.encode(x)
    eps = jax.random.normal(self.make_rng('sample'), mean.shape, mean.dtype)
    z = mean + jnp.exp(0.5 * logvar) * eps
    return {'out': self.decode(z), 'mean': mean, 'logvar': logvar, 'z': z}
