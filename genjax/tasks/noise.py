"""Input corruptions for denoising autoencoders (Vincent et al. 2008)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from genjax.config import ConfigError

KINDS = ('none', 'gaussian', 'mask')


@dataclasses.dataclass(frozen=True)
class Corruption:
  """`kind='gaussian'`: add N(0, level^2) noise (not clipped: the model sees the real
  corrupted signal). `kind='mask'`: zero each pixel with probability `level`."""

  kind: str = 'none'
  level: float = 0.0

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ConfigError(f'config.data.noise={self.kind!r} is not one of {KINDS}.')
    if self.kind == 'mask' and not 0.0 <= self.level < 1.0:
      raise ConfigError(f'config.data.noise_level={self.level} must be in [0, 1) for masking.')
    if self.level < 0:
      raise ConfigError(f'config.data.noise_level={self.level} must be >= 0.')

  def apply(self, key: jax.Array, x: jax.Array) -> jax.Array:
    """Corrupts one example (or a batch, with one key for all of it)."""
    if self.kind == 'gaussian':
      return x + self.level * jax.random.normal(key, x.shape, x.dtype)
    if self.kind == 'mask':
      return jnp.where(jax.random.bernoulli(key, self.level, x.shape), 0.0, x)
    return x
