"""A U-Net that predicts noise, velocity or clean images for diffusion and flow matching.

The network of DDPM (Ho et al. 2020) as improved by ADM (Dhariwal & Nichol 2021):
residual blocks conditioned on a time (and optionally class) embedding through a
scale-shift of their second GroupNorm, self-attention at chosen resolutions and in the
middle, and the encoder's activations concatenated onto the decoder's. What the output
means (epsilon, v, x0, a flow velocity) and what ``time`` is (t in [0, 1], an integer
step, a log-SNR) is the task's choice: the model maps ``(x_t, time, labels)`` to an
array of x's shape and knows nothing of noise schedules.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models import dropout as dropout_lib
from genjax.models.group_norm import GroupNorm
from genjax.models.layers import Dtype, as_tuple, conv_kernel_init

Array = jnp.ndarray

# The longest period of the sinusoidal time embedding, as in the Transformer and ADM:
# with time_scale=1000, t in [0, 1] spans the range of DDPM's integer steps 0..1000.
MAX_PERIOD = 10_000.0


def group_count(channels: int, num_groups: int) -> int:
  """The largest divisor of ``channels`` that is at most ``num_groups``.

  GroupNorm needs groups that divide the channels; clipping (rather than failing) lets a
  test or a probe use widths like 8 with the usual ``num_groups=32``.
  """
  return max(g for g in range(1, min(channels, num_groups) + 1) if channels % g == 0)


def time_embedding(time: Array, dim: int) -> Array:
  """Sinusoidal features ``[B] -> [B, dim]``: cosines then sines of ``time`` at
  frequencies spaced geometrically from 1 down towards 1 / MAX_PERIOD (ADM's layout)."""
  half = dim // 2
  freqs = jnp.exp(-math.log(MAX_PERIOD) * jnp.arange(half, dtype=jnp.float32) / half)
  args = time.astype(jnp.float32)[:, None] * freqs[None, :]
  emb = jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)
  if dim % 2:
    emb = jnp.pad(emb, ((0, 0), (0, 1)))
  return emb


def fourier_features(x: Array, exponents: Sequence[int]) -> Array:
  """VDM's input features (Kingma et al. 2021): ``[..., C] -> [..., 2 N C]``,
  the sines then the cosines of ``2 pi 2^n x`` for each of the N exponents n, computed in
  float32. On data in [-1, 1] cut into 256 levels, n = 7 runs one period across each
  level and n = 6 one across two, so the network can see where a noisy value lies between
  the levels, at high signal-to-noise ratios where the noise is smaller than a level."""
  x = x.astype(jnp.float32)
  freqs = 2.0 * math.pi * 2.0 ** jnp.asarray(exponents, jnp.float32)
  args = (x[..., None, :] * freqs[:, None]).reshape(*x.shape[:-1], -1)
  return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


def _conv(features: int, dtype: Dtype, zero: bool = False, **kwargs) -> nn.Conv:
  # Zero-initialised last convs make every residual branch start as the identity and the
  # whole network start at output 0, which keeps early diffusion training stable (ADM).
  init = nn.initializers.zeros if zero else conv_kernel_init
  kwargs.setdefault('padding', ((1, 1), (1, 1)))
  return nn.Conv(features, (3, 3), dtype=dtype, kernel_init=init, **kwargs)


def _norm(x: Array, num_groups: int, dtype: Dtype, name: str | None = None) -> Array:
  groups = group_count(x.shape[-1], num_groups)
  return GroupNorm(num_groups=groups, dtype=dtype, name=name)(x)


class ResBlock(nn.Module):
  """GroupNorm, SiLU, conv3x3; GroupNorm scaled and shifted by the embedding (FiLM:
  ``h * (1 + scale) + shift``); SiLU, dropout, zero-initialised conv3x3; plus the input
  (through a 1x1 conv when the width changes)."""

  features: int
  num_groups: int
  dropout: float
  dtype: Dtype

  @nn.compact
  def __call__(self, x: Array, emb: Array, train: bool, example_ids=None) -> Array:
    h = nn.silu(_norm(x, self.num_groups, self.dtype))
    h = _conv(self.features, self.dtype)(h)
    film = nn.Dense(2 * self.features, dtype=self.dtype, name='emb_proj')(nn.silu(emb))
    scale, shift = jnp.split(film[:, None, None, :], 2, axis=-1)
    h = _norm(h, self.num_groups, self.dtype) * (1 + scale) + shift
    h = dropout_lib.Dropout(self.dropout)(nn.silu(h), not train, example_ids)
    h = _conv(self.features, self.dtype, zero=True)(h)
    if x.shape[-1] != self.features:
      x = nn.Conv(self.features, (1, 1), dtype=self.dtype, kernel_init=conv_kernel_init)(x)
    return x + h


class AttentionBlock(nn.Module):
  """Multi-head self-attention over the H * W positions, pre-GroupNorm, residual; the
  output projection starts at zero so the block starts as the identity."""

  num_heads: int
  num_groups: int
  dtype: Dtype

  @nn.compact
  def __call__(self, x: Array) -> Array:
    b, h, w, c = x.shape
    head_dim = c // self.num_heads
    tokens = _norm(x, self.num_groups, self.dtype).reshape(b, h * w, c)
    qkv = nn.Dense(3 * c, dtype=self.dtype, name='qkv')(tokens)
    q, k, v = jnp.split(qkv.reshape(b, h * w, 3 * self.num_heads, head_dim), 3, axis=2)
    out = jax.nn.dot_product_attention(q, k, v).reshape(b, h * w, c)
    out = nn.Dense(c, dtype=self.dtype, kernel_init=nn.initializers.zeros, name='proj')(out)
    return x + out.reshape(b, h, w, c)


def _upsample(x: Array) -> Array:
  """Nearest-neighbour 2x: each pixel becomes a 2x2 block."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
  return x.reshape(b, 2 * h, 2 * w, c)


def space_to_depth(x: Array, patch: int) -> Array:
  """``[B, H, W, C] -> [B, H/p, W/p, p*p*C]``: each p x p patch becomes one pixel."""
  if patch == 1:
    return x
  b, h, w, c = x.shape
  x = x.reshape(b, h // patch, patch, w // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // patch, w // patch, patch * patch * c)


def depth_to_space(x: Array, patch: int) -> Array:
  """The inverse of `space_to_depth`."""
  if patch == 1:
    return x
  b, h, w, pc = x.shape
  c = pc // (patch * patch)
  x = x.reshape(b, h, w, patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h * patch, w * patch, c)


class UNet(nn.Module):
  """Noise/velocity predictor ``(x [B, H, W, C], time [B], labels [B]) -> [B, H, W, C]``.

  ::

      model = UNet(channels=64, channel_mults=(1, 2, 2), attention_resolutions=(7,),
                   num_classes=10)                      # MNIST: 28 -> 14 -> 7
      variables = model.init(rng, x, t, labels)         # x float [B, 28, 28, 1], t [B]
      out = model.apply(variables, x, t, labels)        # float32 [B, 28, 28, 1]
      out = model.apply(variables, x, t, None)          # the null class (CFG's uncond.)
      out = model.apply(variables, x, t, labels, train=True, rngs={'dropout': rng})

  Layout (ADM's): a conv3x3 to ``channels``; per level ``i``, ``num_res_blocks``
  residual blocks of ``channels * channel_mults[i]`` channels (each followed by
  self-attention where the level's size is in ``attention_resolutions``), then, but for
  the last level, a stride-2 conv3x3 that halves the size; a middle of residual block,
  attention, residual block; the decoder mirrors the levels with ``num_res_blocks + 1``
  blocks each, every block's input concatenated with the matching encoder activation,
  and a nearest-neighbour 2x upsampling plus conv3x3 between levels; finally GroupNorm,
  SiLU and a zero-initialised conv3x3 to C channels. All last convs (and attention's
  output projections) start at zero, so at init the output is exactly 0.

  Conditioning: ``time * time_scale`` gets a sinusoidal embedding of ``channels``
  features and a 2-layer SiLU MLP to ``4 * channels``; with ``num_classes > 0`` a learned
  class embedding is added to it; each residual block turns the sum into a per-channel
  scale and shift of its second GroupNorm.

  Attributes:
    channels: base width; level i has ``channels * channel_mults[i]`` channels.
    channel_mults: width multiplier per level; len(channel_mults) - 1 halvings, so the
      image height and width must be divisible by 2**(len(channel_mults) - 1).
    num_res_blocks: residual blocks per level in the encoder (the decoder has one more).
    attention_resolutions: feature-map sizes (e.g. ``(7,)`` on 28x28 with three levels,
      ``(16, 8)`` on 32x32) at which self-attention follows each residual block; a
      level's size is min(height, width) of its maps. Every entry must be one of the
      model's sizes for the image, so a config written for another size fails loudly.
      The middle block always has attention.
    num_heads: attention heads; must divide every level's width.
    dropout: rate in each residual block, applied only with ``train=True`` (then pass
      ``rngs={'dropout': key}``); with ``example_ids`` (int [B], each example's
      position in the global batch) every example's masks are its own, so a batch split
      over devices draws the same masks (genjax.models.dropout).
    num_groups: GroupNorm groups, clipped to the largest divisor of each width that is
      at most this (32 on widths 64+, 8 on a width of 8).
    num_classes: 0 for an unconditional model (``labels`` must then be None); > 0 adds a
      class embedding of ``num_classes + 1`` rows whose last row, index ``num_classes``,
      is the null class for classifier-free guidance: train with some labels replaced by
      ``num_classes`` and sample with ``labels=None`` (all null) as the unconditional
      branch. Labels must be in [0, num_classes]; under jit they cannot be checked.
    time_scale: ``time`` is multiplied by this before the sinusoidal embedding, whose
      periods run from 2*pi to about 2*pi * 10,000. The caller chooses what time is;
      the product should span hundreds to resolve it well. The default 1000 resolves
      t in [0, 1] as DDPM resolved its steps 0..1000; use 1 for integer steps, and
      about 50 for a log-SNR in [-10, 10] (or rescale it to [0, 1] first, as VDM does).
    patch_size: p > 1 makes the network work on p x p patches: the image becomes
      ``H/p x W/p`` maps of ``p*p*C`` channels before ``conv_in`` and the output is
      unfolded back, as in U-ViT and simple diffusion (Hoogeboom et al. 2023). The first
      level then costs about 1/p^2 as much; level and attention sizes are the patched
      ones (28x28 with p=2 and two levels: 14, 7).
    fourier_exponents: n's of ``fourier_features`` concatenated onto the input before
      ``conv_in`` (VDM uses (6, 7) for its likelihood on 8-bit images); () for none.
    dtype: computation dtype (e.g. jnp.bfloat16); parameters and output stay float32.
  """

  channels: int = 64
  channel_mults: Sequence[int] = (1, 2, 2)
  num_res_blocks: int = 2
  attention_resolutions: Sequence[int] = (7,)
  num_heads: int = 4
  dropout: float = 0.0
  num_groups: int = 32
  num_classes: int = 0
  time_scale: float = 1000.0
  patch_size: int = 1
  fourier_exponents: Sequence[int] = ()
  dtype: Dtype = jnp.float32

  def __post_init__(self) -> None:
    # Tuples (not JSON lists) keep the module hashable; bad configs fail before tracing.
    self.channel_mults = as_tuple(self.channel_mults)
    self.attention_resolutions = as_tuple(self.attention_resolutions)
    self.fourier_exponents = as_tuple(self.fourier_exponents)
    _check_config(self)
    super().__post_init__()

  def level_sizes(self, height: int, width: int) -> tuple[int, ...]:
    """The feature-map size (min of height and width) at each level for an image; fails
    with a message naming the sizes that work when the halvings do not divide it."""
    halvings = len(self.channel_mults) - 1
    factor = self.patch_size * 2**halvings
    if height % factor or width % factor:
      patches = f'cut into {self.patch_size}x{self.patch_size} patches and then ' * (
        self.patch_size > 1
      )
      raise ValueError(
        f'UNet: a {height}x{width} image cannot be {patches}halved {halvings} times '
        f'(channel_mults={self.channel_mults} has {len(self.channel_mults)} levels); use '
        f'an image size divisible by {factor}'
        + (', a smaller patch_size' if self.patch_size > 1 else '')
        + ' or fewer channel_mults'
      )
    size = min(height, width) // self.patch_size
    return tuple(size // 2**i for i in range(len(self.channel_mults)))

  def check_image(self, height: int, width: int) -> tuple[int, ...]:
    """`level_sizes`, also failing when an attention size is not one of them."""
    sizes = self.level_sizes(height, width)
    missing = [r for r in self.attention_resolutions if r not in sizes]
    if missing:
      raise ValueError(
        f'UNet: attention_resolutions {self.attention_resolutions} has {missing}, not a '
        f'feature-map size of this U-Net on {height}x{width} images; choose among '
        f'{sizes}, or () for attention in the middle block only'
      )
    return sizes

  @nn.compact
  def __call__(
    self,
    x: Array,
    time: Array,
    labels: Array | None = None,
    train: bool = False,
    example_ids: Array | None = None,
  ) -> Array:
    batch = _check_inputs(x)
    time, labels = _check_time(time, batch), self._labels(labels, batch)
    sizes = self.check_image(x.shape[1], x.shape[2])
    emb = self._embed(time, labels)

    res = dict(num_groups=self.num_groups, dropout=self.dropout, dtype=self.dtype)
    attn = dict(num_heads=self.num_heads, num_groups=self.num_groups, dtype=self.dtype)
    last = len(self.channel_mults) - 1
    inputs = x
    if self.fourier_exponents:  # before the cast: a bfloat16 x has no fine levels
      inputs = jnp.concatenate([x, fourier_features(x, self.fourier_exponents)], axis=-1)
    h = _conv(self.channels, self.dtype, name='conv_in')(
      space_to_depth(inputs.astype(self.dtype), self.patch_size)
    )
    skips = [h]
    for level, mult in enumerate(self.channel_mults):
      for i in range(self.num_res_blocks):
        h = ResBlock(self.channels * mult, **res, name=f'down_{level}_res_{i}')(
          h, emb, train, example_ids
        )
        if sizes[level] in self.attention_resolutions:
          h = AttentionBlock(**attn, name=f'down_{level}_attn_{i}')(h)
        skips.append(h)
      if level != last:
        h = _conv(h.shape[-1], self.dtype, strides=(2, 2), name=f'down_{level}_downsample')(h)
        skips.append(h)

    width = self.channels * self.channel_mults[-1]
    h = ResBlock(width, **res, name='mid_res_0')(h, emb, train, example_ids)
    h = AttentionBlock(**attn, name='mid_attn')(h)
    h = ResBlock(width, **res, name='mid_res_1')(h, emb, train, example_ids)

    for level in reversed(range(len(self.channel_mults))):
      width = self.channels * self.channel_mults[level]
      for i in range(self.num_res_blocks + 1):
        h = jnp.concatenate([h, skips.pop()], axis=-1)
        h = ResBlock(width, **res, name=f'up_{level}_res_{i}')(h, emb, train, example_ids)
        if sizes[level] in self.attention_resolutions:
          h = AttentionBlock(**attn, name=f'up_{level}_attn_{i}')(h)
      if level != 0:
        h = _conv(width, self.dtype, name=f'up_{level}_upsample')(_upsample(h))

    h = nn.silu(_norm(h, self.num_groups, self.dtype, name='norm_out'))
    out = _conv(x.shape[-1] * self.patch_size**2, self.dtype, zero=True, name='conv_out')(h)
    return depth_to_space(out, self.patch_size).astype(jnp.float32)

  def _embed(self, time: Array, labels: Array | None) -> Array:
    dim = 4 * self.channels
    emb = time_embedding(time * self.time_scale, self.channels).astype(self.dtype)
    emb = nn.Dense(dim, dtype=self.dtype, name='time_mlp_0')(emb)
    emb = nn.Dense(dim, dtype=self.dtype, name='time_mlp_1')(nn.silu(emb))
    if labels is None:
      return emb
    classes = nn.Embed(self.num_classes + 1, dim, name='class_embed')(labels)
    return emb + classes.astype(self.dtype)

  def _labels(self, labels: Array | None, batch: int) -> Array | None:
    """Checked labels [batch]; on a conditional model None becomes the null class."""
    if self.num_classes == 0:
      if labels is not None:
        raise ValueError(
          'UNet is unconditional (num_classes=0) but labels were passed; set num_classes '
          'to make it class-conditional, or pass labels=None'
        )
      return None
    if labels is None:
      return jnp.full((batch,), self.num_classes, jnp.int32)  # all null (CFG's uncond.)
    labels = jnp.asarray(labels)
    if labels.shape != (batch,) or not jnp.issubdtype(labels.dtype, jnp.integer):
      raise ValueError(
        f'UNet: expected integer labels of shape [{batch}] in [0, {self.num_classes}] '
        f'({self.num_classes} = null), got {labels.dtype} {tuple(labels.shape)}'
      )
    return labels


def _check_config(m: UNet) -> None:
  """Fails at construction, with what to change, on a configuration that cannot work."""
  if m.channels <= 0:
    raise ValueError(f'UNet: channels must be positive, got {m.channels}')
  if not m.channel_mults or any(c <= 0 for c in m.channel_mults):
    raise ValueError(
      f'UNet: channel_mults must be a non-empty tuple of positive ints (e.g. (1, 2, 2)), '
      f'got {m.channel_mults!r}'
    )
  if m.num_res_blocks < 1:
    raise ValueError(f'UNet: num_res_blocks must be >= 1, got {m.num_res_blocks}')
  if any(r <= 0 for r in m.attention_resolutions):
    raise ValueError(
      f'UNet: attention_resolutions must be positive sizes, got {m.attention_resolutions!r}'
    )
  widths = tuple(m.channels * c for c in m.channel_mults)
  if m.num_heads < 1 or any(w % m.num_heads for w in widths):
    raise ValueError(
      f'UNet: num_heads={m.num_heads} must be >= 1 and divide every level width {widths} '
      f'(channels={m.channels} times channel_mults={m.channel_mults})'
    )
  if not 0.0 <= m.dropout < 1.0:
    raise ValueError(f'UNet: dropout must be in [0, 1), got {m.dropout}')
  if m.num_groups < 1:
    raise ValueError(f'UNet: num_groups must be >= 1, got {m.num_groups}')
  if m.num_classes < 0:
    raise ValueError(f'UNet: num_classes must be >= 0 (0: unconditional), got {m.num_classes}')
  if m.patch_size < 1:
    raise ValueError(f'UNet: patch_size must be >= 1 (1: no patching), got {m.patch_size}')
  if not m.time_scale > 0:
    raise ValueError(f'UNet: time_scale must be positive, got {m.time_scale}')


def _check_inputs(x: Array) -> int:
  if x.ndim != 4 or not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(
      f'UNet: expected float images [batch, height, width, channels], '
      f'got {x.dtype} {tuple(x.shape)}'
    )
  return x.shape[0]


def _check_time(time: Array, batch: int) -> Array:
  # A scalar serves a sampler that steps the whole batch through the same times.
  time = jnp.asarray(time, jnp.float32)
  if time.ndim == 0:
    return jnp.broadcast_to(time, (batch,))
  if time.shape != (batch,):
    raise ValueError(f'UNet: expected time of shape [{batch}] (or a scalar), got {time.shape}')
  return time
