"""Light image augmentation inside the jitted loss: random crops and horizontal flips.

Each example is augmented from its own key (`base.per_example_keys`), so the batch the
model sees is the same under 'jit', 'pmap' and one device.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from genjax.config import ConfigError


@dataclasses.dataclass(frozen=True)
class CropFlip:
  """`crop_padding` > 0: zero-pad each side by that many pixels, then crop a random
  window of the original size (a shift of up to `crop_padding` pixels each way).
  `flip`: mirror left-right with probability 1/2; only where the data allows it
  (clothes and fruits mirror into clothes and fruits; digits do not)."""

  crop_padding: int = 0
  flip: bool = False

  def __post_init__(self):
    if isinstance(self.crop_padding, bool) or not isinstance(self.crop_padding, int):
      raise ConfigError(f'config.augment.crop_padding={self.crop_padding!r} must be an int.')
    if self.crop_padding < 0:
      raise ConfigError(f'config.augment.crop_padding={self.crop_padding} must be >= 0.')

  @property
  def active(self) -> bool:
    return self.crop_padding > 0 or self.flip

  def check(self, image_shape) -> None:
    """Fails early when the padding is not smaller than the image."""
    if self.crop_padding >= min(image_shape[:2]):
      raise ConfigError(
        f'config.augment.crop_padding={self.crop_padding} shifts a '
        f'{image_shape[0]}x{image_shape[1]} image by its whole size or more; use less '
        f'than {min(image_shape[:2])} (a tenth to a seventh of the side is usual).'
      )

  def one(self, key: jax.Array, image: jax.Array) -> jax.Array:
    """One image [H, W, C], its key -> the augmented image (same shape and dtype)."""
    k_shift, k_flip = jax.random.split(key)
    p = self.crop_padding
    if p:
      h, w, c = image.shape
      padded = jnp.pad(image, ((p, p), (p, p), (0, 0)))
      dy, dx = jax.random.randint(k_shift, (2,), 0, 2 * p + 1)
      image = jax.lax.dynamic_slice(padded, (dy, dx, 0), (h, w, c))
    if self.flip:
      image = jnp.where(jax.random.bernoulli(k_flip), image[:, ::-1], image)
    return image

  def __call__(self, images: jax.Array, keys: jax.Array) -> jax.Array:
    """Images [B, H, W, C] and one key per example [B] -> augmented images."""
    if not self.active:
      return images
    return jax.vmap(self.one)(keys, images)
