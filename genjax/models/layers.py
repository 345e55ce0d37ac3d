"""Shared building blocks for the image models (autoencoders, VAEs).

Images are float32 NHWC arrays. Every block takes a computation ``dtype``; parameters
stay float32 so that mixed precision only changes the arithmetic, not the checkpoint.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

Array = jnp.ndarray
Dtype = Any
Activation = Callable[[Array], Array]

ARCHS = ('mlp', 'conv')

# Activations by name, so that a config (plain data) can choose one.
ACTIVATIONS: dict[str, Activation] = {
  'relu': nn.relu,
  'gelu': nn.gelu,
  'elu': nn.elu,
  'silu': nn.silu,
  'swish': nn.swish,
  'tanh': jnp.tanh,
  'softplus': nn.softplus,
  'leaky_relu': nn.leaky_relu,
}


def get_activation(activation: str | Activation) -> Activation:
  """Returns the activation function named ``activation`` (or ``activation`` itself)."""
  if callable(activation):
    return activation
  if activation not in ACTIVATIONS:
    raise ValueError(
      f'unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)} or a callable'
    )
  return ACTIVATIONS[activation]


def conv_kernel_init(key: Array, shape: Sequence[int], dtype: Dtype = jnp.float32) -> Array:
  """``lecun_normal`` for an HWIO conv kernel, drawn as a [fan_in, fan_out] matrix.

  The same distribution as ``nn.initializers.lecun_normal()``, but XLA:CPU compiles a
  rank-4 random draw ~6x slower (seconds per conv layer at every init).
  """
  fan_in = math.prod(shape[:-1])
  return nn.initializers.lecun_normal()(key, (fan_in, shape[-1]), dtype).reshape(shape)


def as_tuple(value: int | Sequence[int]) -> tuple[int, ...]:
  """``512 -> (512,)``; a list (e.g. read back from config.json) -> tuple."""
  return (int(value),) if isinstance(value, int) else tuple(int(v) for v in value)


def start_size(image_shape: Sequence[int], num_upsamples: int) -> tuple[int, int]:
  """Spatial size of the map a decoder upsamples ``num_upsamples`` times by 2."""
  height, width = int(image_shape[0]), int(image_shape[1])
  factor = 2**num_upsamples
  if height % factor or width % factor:
    allowed = min((height & -height).bit_length(), (width & -width).bit_length()) - 1
    raise ValueError(
      f'image size {height}x{width} is not divisible by 2**len(widths) = {factor}; '
      f'use at most {allowed} conv widths for this size'
    )
  return height // factor, width // factor


def check_image_model(arch: str, image_shape: Sequence[int], widths: Sequence[int]) -> None:
  """Fails early, with an actionable message, on a bad model configuration."""
  if arch not in ARCHS:
    raise ValueError(f'unknown arch {arch!r}; expected one of {ARCHS}')
  if len(tuple(image_shape)) != 3:
    raise ValueError(f'image_shape must be (height, width, channels), got {image_shape!r}')
  if arch == 'conv':
    if not tuple(widths):
      raise ValueError("arch='conv' needs at least one entry in widths")
    start_size(image_shape, len(tuple(widths)))


def prepare_image_model(module: nn.Module) -> None:
  """For a module's __post_init__: shape fields as tuples, then validated.

  Tuples, not the lists a JSON config gives, keep the module hashable (jit-static);
  validating at construction makes a bad config fail before any tracing.
  """
  module.image_shape = as_tuple(module.image_shape)
  module.widths = as_tuple(module.widths)
  module.hidden = as_tuple(module.hidden)
  check_image_model(module.arch, module.image_shape, module.widths)


def check_images(x: Array, image_shape: Sequence[int]) -> None:
  """Fails early when a batch does not match the model's ``image_shape``."""
  if x.ndim != 4 or tuple(x.shape[1:]) != as_tuple(image_shape):
    raise ValueError(
      f'expected images of shape [batch, {", ".join(map(str, image_shape))}], got {tuple(x.shape)}'
    )


class MLP(nn.Module):
  """Dense layers ``[..., D] -> [..., features[-1]]``.

  ``activation`` follows every layer but the last, which gets ``final_activation``.
  """

  features: Sequence[int]
  activation: str | Activation = 'relu'
  final_activation: str | Activation | None = None
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    features = as_tuple(self.features)
    for i, width in enumerate(features):
      x = nn.Dense(width, dtype=self.dtype)(x)
      if i < len(features) - 1:
        x = get_activation(self.activation)(x)
      elif self.final_activation is not None:
        x = get_activation(self.final_activation)(x)
    return x


class ConvEncoder(nn.Module):
  """Stride-2 convolutions, one per width, then flatten.

  ``[B, H, W, C] -> [B, (H / 2**n) * (W / 2**n) * widths[-1]]`` with ``n = len(widths)``
  (sizes rounded up when not divisible).
  """

  widths: Sequence[int]
  kernel_size: int = 4  # 4x4 with stride 2 pads symmetrically on even-sized inputs
  activation: str | Activation = 'relu'
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    act = get_activation(self.activation)
    k = self.kernel_size
    for width in as_tuple(self.widths):
      x = nn.Conv(
        width,
        (k, k),
        strides=(2, 2),
        padding='SAME',
        dtype=self.dtype,
        kernel_init=conv_kernel_init,
      )(x)
      x = act(x)
    return x.reshape((x.shape[0], -1))


class Upsample2x(nn.Module):
  """A 4x4 stride-2 transposed convolution, computed as a sub-pixel convolution.

  ``[B, H, W, Cin] -> [B, 2H, 2W, features]``. One 2x2 convolution makes the four
  output phases (4 * features channels) and depth-to-space interleaves them: exactly
  a 4x4 stride-2 transposed convolution (each of its 16 taps is one tap of the 2x2 conv
  for one phase), cropped by (2, 0) instead of (1, 1), a one-pixel shift that the
  learned decoder absorbs. Why not ``nn.ConvTranspose``: XLA:CPU computes its kernel
  gradient ~10x slower than this, which dominated a conv VAE's train step.
  """

  features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    b, h, w, _ = x.shape
    y = Conv2x2(4 * self.features, dtype=self.dtype, name='Conv_0')(x)
    y = y.reshape(b, h, w, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, 2 * h, 2 * w, self.features)


class Conv2x2(nn.Module):
  """``nn.Conv(features, (2, 2), padding='SAME')`` (same parameters), as one matmul.

  The four taps are gathered into channels (im2col) and multiplied by the reshaped
  kernel. Same function and parameter tree as the flax conv; on XLA:CPU its backward
  pass measured 2-3x faster at the 14x14 maps of a 28x28 generator (44 -> 16 ms for
  batch 64, 64 -> 4*32 channels), because both gradients become plain matmuls.
  """

  features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    b, h, w, c = x.shape
    kernel = self.param('kernel', conv_kernel_init, (2, 2, c, self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    x = x.astype(self.dtype)
    # flax's SAME padding for an even kernel pads (0, 1): taps at offsets 0 and +1.
    padded = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    patches = jnp.concatenate(
      [padded[:, i : i + h, j : j + w] for i in (0, 1) for j in (0, 1)], axis=-1
    )
    y = patches.reshape(b * h * w, 4 * c) @ kernel.reshape(4 * c, self.features).astype(self.dtype)
    return (y + bias.astype(self.dtype)).reshape(b, h, w, self.features)


class ConvDecoder(nn.Module):
  """Dense to a small map, then stride-2 upsampling convs up to the image size.

  ``[B, D] -> [B, H, W, C]`` for ``image_shape = (H, W, C)``, with no final activation.
  ``widths`` is in encoder order (e.g. ``(32, 64)``): the dense layer makes an
  ``(H / 2**n, W / 2**n, widths[-1])`` map, each upsampling halves back through the
  widths and the last one outputs the image channels (28: 7 -> 14 -> 28).
  """

  image_shape: Sequence[int]
  widths: Sequence[int]
  activation: str | Activation = 'relu'
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z: Array) -> Array:
    act = get_activation(self.activation)
    widths = as_tuple(self.widths)
    if not widths:
      raise ValueError('ConvDecoder needs at least one width')
    h0, w0 = start_size(self.image_shape, len(widths))
    x = act(nn.Dense(h0 * w0 * widths[-1], dtype=self.dtype)(z))
    x = x.reshape((z.shape[0], h0, w0, widths[-1]))
    for width in reversed(widths[:-1]):
      x = act(Upsample2x(width, dtype=self.dtype)(x))
    return Upsample2x(int(self.image_shape[2]), dtype=self.dtype)(x)


class Encoder(nn.Module):
  """Image -> features: ``[B, H, W, C] -> [B, out_features]``, no final activation.

  ``arch='mlp'``: flatten, then ``hidden`` dense layers. ``arch='conv'``: a
  ConvEncoder over ``widths``, then the ``hidden`` dense layers.
  """

  arch: str
  out_features: int
  widths: Sequence[int] = (32, 64)
  hidden: int | Sequence[int] = (512,)
  activation: str | Activation = 'relu'
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    if self.arch == 'conv':
      x = ConvEncoder(self.widths, activation=self.activation, dtype=self.dtype)(x)
    else:
      x = x.reshape((x.shape[0], -1))
    features = as_tuple(self.hidden) + (self.out_features,)
    return MLP(features, activation=self.activation, dtype=self.dtype)(x)


class Decoder(nn.Module):
  """Latent -> image-shaped output: ``[B, D] -> [B, H, W, C]``, no final activation.

  Mirrors Encoder: the ``hidden`` dense layers in reverse, then (``arch='conv'``) a
  ConvDecoder or (``arch='mlp'``) a dense layer to ``H * W * C``.
  """

  arch: str
  image_shape: Sequence[int]
  widths: Sequence[int] = (32, 64)
  hidden: int | Sequence[int] = (512,)
  activation: str | Activation = 'relu'
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z: Array) -> Array:
    image_shape = as_tuple(self.image_shape)
    hidden = tuple(reversed(as_tuple(self.hidden)))
    if self.arch == 'conv':
      if hidden:
        z = MLP(
          hidden, activation=self.activation, final_activation=self.activation, dtype=self.dtype
        )(z)
      return ConvDecoder(image_shape, self.widths, activation=self.activation, dtype=self.dtype)(z)
    x = MLP(hidden + (math.prod(image_shape),), activation=self.activation, dtype=self.dtype)(z)
    return x.reshape((z.shape[0],) + image_shape)
