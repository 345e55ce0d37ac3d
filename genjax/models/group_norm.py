"""Group normalisation with flax's parameters and outputs, several times faster on CPU.

``nn.GroupNorm`` reshapes ``[B, H, W, C]`` to ``[B, H, W, G, C/G]`` and reduces over
H, W and C/G at once. XLA:CPU emits that as a strided reduction whose innermost axis is
only C/G long (2 to 8 in our U-Nets), and the U-Net's norms then took as long as its
convolutions: 37% of a sampler's op time on MNIST. Here the sums over H and W are taken
per channel, keeping C the contiguous axis, the channels of a group are combined on the
small ``[B, C]`` result, and the normalisation becomes one per-channel multiply-add that
fuses with the activation after it. On ``[64, 28, 28, 16]`` with 8 groups, norm plus
SiLU ran in a fifth to a seventh of flax's time, gradient included (2-core AMD EPYC).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models.layers import Dtype

Array = jnp.ndarray


class GroupNorm(nn.Module):
  """``nn.GroupNorm(num_groups, epsilon=1e-6)`` over the last axis of ``[B, ..., C]``.

  Same parameter names and shapes (``scale`` and ``bias``, ``[C]``, float32), so
  checkpoints written with flax's module load unchanged; outputs agree to float32
  rounding. The statistics (mean and mean square, as flax's fast variance) are taken in
  float32 whatever ``dtype`` is; the result is cast to ``dtype`` (the input's if None).
  """

  num_groups: int = 32
  epsilon: float = 1e-6
  dtype: Dtype | None = None

  @nn.compact
  def __call__(self, x: Array) -> Array:
    channels = x.shape[-1]
    if channels % self.num_groups:
      raise ValueError(
        f'GroupNorm: num_groups={self.num_groups} must divide the {channels} channels'
      )
    scale = self.param('scale', nn.initializers.ones, (channels,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (channels,), jnp.float32)
    batch, per_group = x.shape[0], channels // self.num_groups
    spatial = tuple(range(1, x.ndim - 1))
    count = math.prod(x.shape[1:-1]) * per_group

    def group_mean(per_channel_sum: Array) -> Array:  # [B, C] -> [B, C], each group's mean
      sums = per_channel_sum.reshape(batch, self.num_groups, per_group).sum(-1)
      return jnp.repeat(sums / count, per_group, axis=-1)

    x32 = x.astype(jnp.float32)
    mean = group_mean(x32.sum(spatial))
    variance = jnp.maximum(group_mean(jnp.square(x32).sum(spatial)) - jnp.square(mean), 0.0)
    multiplier = jax.lax.rsqrt(variance + self.epsilon) * scale  # [B, C]
    offset = bias - mean * multiplier
    shape = (batch,) + (1,) * len(spatial) + (channels,)
    y = x32 * multiplier.reshape(shape) + offset.reshape(shape)
    return y.astype(self.dtype or x.dtype)
