"""A deterministic autoencoder for images in [0, 1]."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
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


class Autoencoder(nn.Module):
  """Encoder to a ``latent_dim`` code, decoder back to per-pixel logits.

  Built from keyword hyperparameters only (``Autoencoder(**config.model)``)::

      model = Autoencoder(image_shape=(28, 28, 1), latent_dim=32, arch='mlp')
      variables = model.init(rng, x)             # x: float32 [B, H, W, C] in [0, 1]
      logits = model.apply(variables, x)         # [B, H, W, C]
      z = model.apply(variables, x, method='encode')

  The model has no state and no randomness: ``apply`` is a pure function.

  Attributes:
    image_shape: (height, width, channels) of the images.
    latent_dim: size of the code z.
    arch: 'mlp' (flattened pixels) or 'conv' (stride-2 convs and their mirror).
    widths: conv channels per stride-2 layer, encoder order ('conv' only); the image
      height and width must be divisible by 2**len(widths).
    hidden: dense layer sizes between the pixels/conv features and z (the decoder uses
      them in reverse); an int means one layer.
    activation: name of the hidden activation ('relu', 'gelu', ...).
    dtype: computation dtype (e.g. jnp.bfloat16); parameters and outputs stay float32.
  """

  image_shape: Sequence[int] = (28, 28, 1)
  latent_dim: int = 32
  arch: str = 'mlp'
  widths: Sequence[int] = (32, 64)
  hidden: int | Sequence[int] = (512,)
  activation: str | Activation = 'relu'
  dtype: Dtype = jnp.float32

  def __post_init__(self) -> None:
    prepare_image_model(self)
    super().__post_init__()

  def setup(self) -> None:
    self.encoder = Encoder(
      self.arch,
      self.latent_dim,
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

  def encode(self, x: Array) -> Array:
    """Images ``[B, H, W, C]`` in [0, 1] -> codes ``[B, latent_dim]`` (float32)."""
    check_images(x, self.image_shape)
    return self.encoder(x).astype(jnp.float32)

  def decode(self, z: Array) -> Array:
    """Codes ``[B, latent_dim]`` -> pixel logits ``[B, H, W, C]`` (float32)."""
    return self.decoder(z).astype(jnp.float32)

  def __call__(self, x: Array) -> Array:
    """Images ``[B, H, W, C]`` -> reconstruction logits ``[B, H, W, C]``."""
    return self.decode(self.encode(x))

  def reconstruct(self, x: Array) -> Array:
    """Images ``[B, H, W, C]`` -> reconstructions in [0, 1] (``sigmoid(logits)``)."""
    return nn.sigmoid(self(x))
