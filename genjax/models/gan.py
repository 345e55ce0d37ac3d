"""DCGAN generator and discriminator for images in [0, 1] (NHWC), optionally conditional.

The adversarial losses, penalties and EMA live in ``genjax.tasks.gan_losses``; these
modules only map latents to images and images to logits.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models.layers import (
  Dtype,
  Upsample2x,
  as_tuple,
  check_images,
  conv_kernel_init,
  start_size,
)

Array = jnp.ndarray

NORMS = ('batch', 'layer', 'none')
CONDITIONINGS = ('projection', 'concat')

# Running averages as in PyTorch's DCGAN (momentum 0.1 there): flax's 0.99 default would
# need hundreds of steps before eval-mode samples look like train-mode ones.
BATCH_NORM_MOMENTUM = 0.9
LEAKY_SLOPE = 0.2


def _check_common(
  name: str, image_shape: tuple[int, ...], widths: tuple[int, ...], num_classes: int
) -> None:
  if len(image_shape) != 3:
    raise ValueError(f'{name}: image_shape must be (height, width, channels), got {image_shape!r}')
  if not widths:
    raise ValueError(f'{name} needs at least one entry in widths')
  if any(w <= 0 for w in widths):
    raise ValueError(f'{name}: widths must be positive, got {widths!r}')
  if num_classes < 0:
    raise ValueError(f'{name}: num_classes must be >= 0 (0: unconditional), got {num_classes}')


def _check_labels(name: str, labels: Array | None, num_classes: int, batch: int) -> None:
  if num_classes > 0:
    if labels is None:
      raise ValueError(f'{name} has num_classes={num_classes}: pass integer labels [batch]')
    if labels.shape != (batch,) or not jnp.issubdtype(labels.dtype, jnp.integer):
      raise ValueError(
        f'{name}: expected integer labels of shape [{batch}], '
        f'got {labels.dtype} {tuple(labels.shape)}'
      )
  elif labels is not None:
    raise ValueError(f'{name} is unconditional (num_classes=0) but labels were passed')


class Generator(nn.Module):
  """DCGAN generator: ``z [B, latent_dim]`` (+ ``labels [B]``) -> images ``[B, H, W, C]`` in [0, 1].

  ::

      model = Generator(image_shape=(28, 28, 1), latent_dim=64)
      variables = model.init(rng, z)          # {'params', 'batch_stats'} (norm='batch')
      images, updates = model.apply(variables, z, mutable=['batch_stats'])   # train
      images = model.apply(variables, z, train=False)                        # running stats

  A dense layer makes an ``(H / 2**n, W / 2**n, widths[0])`` map (``n = len(widths)``);
  each of the n upsampling blocks (a 4x4 stride-2 transposed conv, as ``Upsample2x``)
  doubles it to ``widths[i]`` channels, every stage followed by the normalisation and a
  ReLU; a 3x3 conv gives the image channels and a sigmoid the [0, 1] range
  (28: 7 -> 14 -> 28; 32: 8 -> 16 -> 32).

  Attributes:
    image_shape: (height, width, channels); height and width divisible by 2**len(widths).
    latent_dim: size of z.
    widths: channels per stage, generator order (wide to narrow), e.g. ``(128, 64)``.
    num_classes: > 0 makes it conditional: a learned class embedding is concatenated
      to z, and ``labels`` (ints in [0, num_classes)) are required.
    embed_dim: size of that class embedding; None means latent_dim.
    norm: 'batch', 'layer' (over each example's H, W, C) or 'none'.
    batch_stats_axis: mesh/pmap axis over which BatchNorm averages its batch statistics
      (e.g. 'data' under shard_map), so a sharded batch normalises as the full one does.
    dtype: computation dtype; parameters and outputs stay float32.
  """

  image_shape: Sequence[int] = (28, 28, 1)
  latent_dim: int = 64
  widths: Sequence[int] = (128, 64)
  num_classes: int = 0
  embed_dim: int | None = None
  norm: str = 'batch'
  batch_stats_axis: str | None = None
  dtype: Dtype = jnp.float32

  def __post_init__(self) -> None:
    # Tuples (not JSON lists) keep the module hashable; bad configs fail before tracing.
    self.image_shape = as_tuple(self.image_shape)
    self.widths = as_tuple(self.widths)
    _check_common('Generator', self.image_shape, self.widths, self.num_classes)
    start_size(self.image_shape, len(self.widths))  # the upsampling must land on the size
    if self.norm not in NORMS:
      raise ValueError(f'unknown norm {self.norm!r}; expected one of {NORMS}')
    if self.latent_dim <= 0:
      raise ValueError(f'latent_dim must be positive, got {self.latent_dim}')
    super().__post_init__()

  def _normalize(self, x: Array, train: bool) -> Array:
    if self.norm == 'batch':
      return nn.BatchNorm(
        use_running_average=not train,
        momentum=BATCH_NORM_MOMENTUM,
        axis_name=self.batch_stats_axis,
        dtype=self.dtype,
      )(x)
    if self.norm == 'layer':
      return nn.LayerNorm(reduction_axes=(-3, -2, -1), feature_axes=-1, dtype=self.dtype)(x)
    return x

  @nn.compact
  def __call__(self, z: Array, labels: Array | None = None, train: bool = True) -> Array:
    if z.ndim != 2 or z.shape[1] != self.latent_dim:
      raise ValueError(
        f'expected latents of shape [batch, {self.latent_dim}], got {tuple(z.shape)}'
      )
    batch = z.shape[0]
    labels = None if labels is None else jnp.asarray(labels)
    _check_labels('Generator', labels, self.num_classes, batch)
    if self.num_classes > 0:
      embed = nn.Embed(self.num_classes, self.embed_dim or self.latent_dim, name='class_embed')
      z = jnp.concatenate([z, embed(labels).astype(z.dtype)], axis=-1)
    h0, w0 = start_size(self.image_shape, len(self.widths))
    x = nn.Dense(h0 * w0 * self.widths[0], dtype=self.dtype)(z)
    x = x.reshape((batch, h0, w0, self.widths[0]))
    x = nn.relu(self._normalize(x, train))
    for width in self.widths:
      x = nn.relu(self._normalize(Upsample2x(width, dtype=self.dtype)(x), train))
    x = nn.Conv(
      int(self.image_shape[2]),
      (3, 3),
      padding='SAME',
      dtype=self.dtype,
      kernel_init=conv_kernel_init,
    )(x)
    return nn.sigmoid(x.astype(jnp.float32))


class Discriminator(nn.Module):
  """DCGAN discriminator: images ``[B, H, W, C]`` (+ ``labels [B]``) -> logits ``[B]``.

  4x4 stride-2 convs with leaky ReLU (0.2), one per width, then flatten and a dense
  layer to one logit. No batch norm: each example's logit depends on that example
  only, which gradient penalties (WGAN-GP, R1) assume.

  ``num_codes > 0`` adds InfoGAN's Q head (Chen et al. 2016): two dense layers on the
  shared conv features predict which of ``num_codes`` categorical codes made a generated
  image; ``return_code_logits=True`` returns ``(logits, code_logits [B, num_codes])``.

  Conditional (``num_classes > 0``), by ``conditioning``:
    'projection': logit += <embed(y), features> on the flattened conv features
      (Miyato & Koyama 2018, cGANs with projection discriminator).
    'concat': the one-hot label is tiled over the image as extra input channels.

  Attributes:
    image_shape: (height, width, channels); any size (each stride-2 conv rounds up).
    widths: conv channels per stride-2 layer, e.g. ``(64, 128)`` or ``(64, 128, 256)``.
    num_classes: > 0 makes it conditional; ``labels`` are then required.
    conditioning: 'projection' or 'concat' (see above; ignored when unconditional).
    num_codes: > 0 adds the Q head over that many categorical codes (InfoGAN).
    dtype: computation dtype; parameters and logits stay float32.
  """

  image_shape: Sequence[int] = (28, 28, 1)
  widths: Sequence[int] = (64, 128)
  num_classes: int = 0
  conditioning: str = 'projection'
  num_codes: int = 0
  dtype: Dtype = jnp.float32

  def __post_init__(self) -> None:
    self.image_shape = as_tuple(self.image_shape)
    self.widths = as_tuple(self.widths)
    _check_common('Discriminator', self.image_shape, self.widths, self.num_classes)
    if self.conditioning not in CONDITIONINGS:
      raise ValueError(
        f'unknown conditioning {self.conditioning!r}; expected one of {CONDITIONINGS}'
      )
    if self.num_codes < 0:
      raise ValueError(
        f'Discriminator: num_codes must be >= 0 (0: no Q head), got {self.num_codes}'
      )
    super().__post_init__()

  @nn.compact
  def __call__(
    self, x: Array, labels: Array | None = None, return_code_logits: bool = False
  ) -> Array | tuple[Array, Array]:
    check_images(x, self.image_shape)
    batch = x.shape[0]
    labels = None if labels is None else jnp.asarray(labels)
    _check_labels('Discriminator', labels, self.num_classes, batch)
    if self.num_classes > 0 and self.conditioning == 'concat':
      onehot = jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype)
      tiled = jnp.broadcast_to(onehot[:, None, None, :], x.shape[:3] + (self.num_classes,))
      x = jnp.concatenate([x, tiled], axis=-1)
    for width in self.widths:
      x = nn.Conv(
        width,
        (4, 4),
        strides=(2, 2),
        padding='SAME',
        dtype=self.dtype,
        kernel_init=conv_kernel_init,
      )(x)
      x = nn.leaky_relu(x, LEAKY_SLOPE)
    features = x.reshape((batch, -1))
    logits = nn.Dense(1, dtype=self.dtype)(features)[:, 0].astype(jnp.float32)
    if self.num_classes > 0 and self.conditioning == 'projection':
      # Scaled like the dense layer's lecun_normal kernel, so that at init the
      # projection term is no larger than the unconditional logit.
      dim = features.shape[-1]
      embed = nn.Embed(
        self.num_classes,
        dim,
        name='class_embed',
        embedding_init=nn.initializers.normal(stddev=dim**-0.5),
      )
      projection = jnp.sum(embed(labels) * features.astype(jnp.float32), axis=-1)
      logits = logits + projection
    if not self.num_codes:
      if return_code_logits:
        raise ValueError('return_code_logits=True needs a Q head: set num_codes > 0')
      return logits
    # Built on every call so that `init` creates it; unused outputs cost nothing under jit.
    q = nn.leaky_relu(nn.Dense(128, dtype=self.dtype, name='q_hidden')(features), LEAKY_SLOPE)
    code_logits = nn.Dense(self.num_codes, dtype=self.dtype, name='q_codes')(q)
    return (logits, code_logits.astype(jnp.float32)) if return_code_logits else logits
