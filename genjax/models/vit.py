"""A Vision Transformer (Dosovitskiy et al. 2021) for small images.

The image is cut into ``patch_size`` x ``patch_size`` patches, each flattened and
embedded by one dense layer (a stride-``patch_size`` convolution, as a matmul), learned
position embeddings are added, and the tokens run through the pre-LayerNorm blocks the
other Transformers here share (``seq2seq.EncoderBlock``: bidirectional attention and a
GELU MLP). A class token's output, or the mean of the tokens (``pool``), after a final
LayerNorm, is the image's feature vector; one dense layer gives the logits. The interface
is ``Classifier``'s, so a trained ViT is also the GAN metrics' feature network.

::

    model = ViT(image_shape=(28, 28, 1), num_classes=10, patch_size=4)   # 7 x 7 patches
    variables = model.init(rng, x)                 # x: float [B, H, W, C] in [0, 1]
    logits = model.apply(variables, x)             # float32 [B, num_classes]
    logits = model.apply(variables, x, train=True, rngs={'dropout': rng},
                         example_ids=jnp.arange(len(x)))   # per-example dropout masks
    feats = model.apply(variables, x, method='features')   # float32 [B, width]
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from genjax.models import dropout as dropout_lib
from genjax.models.layers import Dtype, as_tuple, check_images
from genjax.models.seq2seq import EncoderBlock
from genjax.models.transformer import (
  INIT_STDDEV,
  INITS,
  _flat,
  _layer_norm,
  remat_policy,
  rematted,
)

Array = jnp.ndarray
POOLS = ('cls', 'mean')
STEMS = ('patch', 'conv')


def _grid(image_shape: Sequence[int], patch: int) -> tuple[int, int]:
  height, width = int(image_shape[0]), int(image_shape[1])
  if patch < 1 or height % patch or width % patch:
    sizes = [p for p in range(1, min(height, width) + 1) if not height % p and not width % p]
    raise ValueError(
      f'patch size {patch} does not divide the {height}x{width} image; use one of {sizes}'
    )
  return height // patch, width // patch


def patchify(images: Array, patch: int) -> Array:
  """``[B, H, W, C]`` -> ``[B, (H / patch) * (W / patch), patch * patch * C]``.

  Patches in row-major order; each patch flattened as (row, column, channel).
  """
  b, h, w, c = images.shape
  rows, cols = _grid((h, w), patch)
  x = images.reshape(b, rows, patch, cols, patch, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, rows * cols, patch * patch * c)


def unpatchify(patches: Array, patch: int, image_shape: Sequence[int]) -> Array:
  """The inverse of ``patchify``: ``[B, N, patch * patch * C]`` -> ``[B, H, W, C]``."""
  h, w, c = as_tuple(image_shape)
  rows, cols = _grid((h, w), patch)
  if tuple(patches.shape[1:]) != (rows * cols, patch * patch * c):
    raise ValueError(
      f'expected patches of shape [batch, {rows * cols}, {patch * patch * c}] for '
      f'{h}x{w}x{c} images in {patch}x{patch} patches, got {tuple(patches.shape)}'
    )
  x = patches.reshape(-1, rows, cols, patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(-1, h, w, c)


class ViT(nn.Module):
  """Images ``[B, H, W, C]`` in [0, 1] -> float32 logits ``[B, num_classes]``.

  Built from keyword hyperparameters only (``ViT(image_shape=..., **config.model)``).

  Attributes:
    image_shape: (height, width, channels) of the images.
    num_classes: number of output classes K.
    patch_size: side of the square patches; must divide height and width.
    width: token embedding size, and the feature dimension D.
    num_layers: Transformer blocks.
    num_heads: attention heads; must divide width.
    mlp_ratio: hidden size of the blocks' MLPs over width.
    dropout: rate on the embeddings and on every attention and MLP output, active only
      with ``train=True`` (then the 'dropout' rng is needed unless the rate is 0); per
      example with ``example_ids``, so any device layout draws the same masks.
    pool: 'cls' (a learned class token's output) or 'mean' (the mean of the patch tokens).
    stem: how pixels become tokens. 'patch': each patch flattened and embedded by one dense
      layer (the original ViT). 'conv': log2(patch_size) 3x3 convolutions of stride 2
      (width / 2 channels, GELU) then a 1x1 convolution to ``width``, one token per
      patch-sized cell as before (Xiao et al. 2021, "Early Convolutions Help Transformers
      See Better": it trains faster and is less sensitive to the optimizer). Needs a
      power-of-two patch size.
    weight_init: the blocks' dense kernels, one of ``transformer.INITS``: 'xavier' (Glorot-
      uniform, ViT's own) or 'gpt' (normal(0.02), residual projections scaled by depth).
    use_bias: biases in the dense layers and LayerNorms of the blocks.
    dtype: computation dtype; parameters, features and logits stay float32.
    remat: the blocks' activation checkpointing (``transformer.REMAT_POLICIES``).
    dropout_bits: 8 or 32 random bits per dropout mask element (``genjax.models.dropout``).
  """

  image_shape: Sequence[int] = (28, 28, 1)
  num_classes: int = 10
  patch_size: int = 4
  width: int = 64
  num_layers: int = 6
  num_heads: int = 4
  mlp_ratio: int = 2
  dropout: float = 0.0
  pool: str = 'cls'
  stem: str = 'patch'
  weight_init: str = 'xavier'
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  remat: bool | str = 'none'
  dropout_bits: int = 8

  def __post_init__(self) -> None:
    remat_policy(self.remat)
    # A tuple keeps the module hashable (jit-static) when a JSON config gives a list.
    self.image_shape = as_tuple(self.image_shape)
    if len(self.image_shape) != 3:
      raise ValueError(
        f'ViT: image_shape must be (height, width, channels), got {self.image_shape!r}'
      )
    for name in ('num_classes', 'width', 'num_layers', 'num_heads', 'mlp_ratio', 'patch_size'):
      if int(getattr(self, name)) < 1:
        raise ValueError(f'ViT: {name} must be positive, got {getattr(self, name)!r}')
    if int(self.num_classes) < 2:
      raise ValueError(f'ViT: num_classes must be at least 2, got {self.num_classes!r}')
    try:
      _grid(self.image_shape, int(self.patch_size))
    except ValueError as e:
      raise ValueError(f'ViT: {e}') from None
    if self.width % self.num_heads:
      raise ValueError(
        f'ViT: width ({self.width}) must be divisible by num_heads ({self.num_heads})'
      )
    if self.pool not in POOLS:
      raise ValueError(f'ViT: pool must be one of {POOLS}, got {self.pool!r}')
    if self.stem not in STEMS:
      raise ValueError(f'ViT: stem must be one of {STEMS}, got {self.stem!r}')
    if self.weight_init not in INITS:
      raise ValueError(f'ViT: weight_init must be one of {INITS}, got {self.weight_init!r}')
    patch = int(self.patch_size)
    if self.stem == 'conv' and patch & (patch - 1):
      raise ValueError(
        f"ViT: stem='conv' halves the image log2(patch_size) times, so patch_size must be "
        f'a power of two, got {patch}'
      )
    if not 0.0 <= float(self.dropout) < 1.0:
      raise ValueError(f'ViT: dropout must be in [0, 1), got {self.dropout!r}')
    if self.dropout_bits not in dropout_lib.BITS:
      raise ValueError(
        f'ViT: dropout_bits must be one of {dropout_lib.BITS}, got {self.dropout_bits!r}'
      )
    super().__post_init__()

  @property
  def num_patches(self) -> int:
    rows, cols = _grid(self.image_shape, int(self.patch_size))
    return rows * cols

  def setup(self) -> None:
    # Modules and parameters made in setup take their names from the attributes.
    if self.stem == 'patch':
      self.patch_embed = nn.Dense(self.width, dtype=self.dtype)
    else:
      halvings = int(self.patch_size).bit_length() - 1
      self.stem_convs = [
        nn.Conv(self.width // 2, (3, 3), strides=2, padding='SAME', dtype=self.dtype)
        for _ in range(halvings)
      ]
      self.patch_embed = nn.Dense(self.width, dtype=self.dtype)  # the 1x1 convolution
    tokens = self.num_patches + (self.pool == 'cls')
    init = nn.initializers.normal(INIT_STDDEV)
    self.positions = self.param('positions', init, (tokens, self.width))
    if self.pool == 'cls':
      self.cls_token = self.param('cls_token', nn.initializers.zeros, (self.width,))
    self.drop = dropout_lib.Dropout(float(self.dropout), self.dropout_bits)
    self.blocks = [
      rematted(EncoderBlock, self.remat, train_argnum=3)(
        self.num_heads,
        self.num_layers,
        self.mlp_ratio,
        float(self.dropout),
        self.use_bias,
        self.dtype,
        self.dropout_bits,
        self.weight_init,
      )
      for _ in range(self.num_layers)
    ]
    self.final_ln = _layer_norm(self.use_bias, jnp.float32, None)
    # Zero logits at the start (as ViT's head): the first steps learn features, not noise.
    self.head = nn.Dense(self.num_classes, kernel_init=nn.initializers.zeros)

  def _cells(self, x: Array) -> Array:
    """Images -> ``[B, num_patches, D]``, one row per patch-sized cell, row-major."""
    if self.stem == 'patch':
      return patchify(x, int(self.patch_size))
    for conv in self.stem_convs:
      x = nn.gelu(conv(x))
    return x.reshape(x.shape[0], -1, x.shape[-1])

  def _features(self, x: Array, train: bool, example_ids: Array | None) -> Array:
    check_images(x, self.image_shape)
    tokens = _flat(self.patch_embed)(self._cells(x.astype(self.dtype)))
    if self.pool == 'cls':
      cls = jnp.broadcast_to(self.cls_token.astype(tokens.dtype), (x.shape[0], 1, self.width))
      tokens = jnp.concatenate([cls, tokens], axis=1)
    tokens = self.drop(tokens + self.positions.astype(tokens.dtype), not train, example_ids)
    # No padding: every token sees every other (a zero attention bias).
    for block in self.blocks:
      tokens = block(tokens, 0.0, train, example_ids)
    pooled = tokens[:, 0] if self.pool == 'cls' else jnp.mean(tokens, axis=1)
    # LayerNorm is per token, so normalizing the class token alone is the same as
    # normalizing all and picking it; the mean is taken of the un-normalized tokens.
    return self.final_ln(pooled.astype(jnp.float32))

  def features(self, x: Array) -> Array:
    """Images ``[B, H, W, C]`` in [0, 1] -> pooled features ``[B, width]`` (float32).

    Never dropped out: the FID features of an image are deterministic.
    """
    return self._features(x, False, None)

  def __call__(self, x: Array, train: bool = False, example_ids: Array | None = None) -> Array:
    """Images ``[B, H, W, C]`` in [0, 1] -> logits ``[B, num_classes]`` (float32)."""
    return self.head(self._features(x, train, example_ids)).astype(jnp.float32)
