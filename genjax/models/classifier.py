"""A small convolutional image classifier whose features define our FID and IS.

The Inception network behind the published FID/IS numbers was trained on ImageNet
and sees nothing useful in 28x28 digits, so for MNIST, Fashion-MNIST and fruits the
GAN metrics use this classifier instead: its penultimate activations are the FID
features and its softmax the IS class probabilities. Numbers are then comparable
only between runs scored with the same trained classifier checkpoint.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from genjax.models.layers import Dtype, as_tuple, check_images, conv_kernel_init

Array = jnp.ndarray


class Classifier(nn.Module):
  """Conv 3x3 + ReLU + 2x2 max-pool per width, dense ReLU features, dense logits.

  Built from keyword hyperparameters only (``Classifier(**config.model)``)::

      model = Classifier(image_shape=(28, 28, 1), num_classes=10)
      variables = model.init(rng, x)                    # x: float [B, H, W, C] in [0, 1]
      logits = model.apply(variables, x)                # [B, num_classes]
      logits = model.apply(variables, x, train=True, rngs={'dropout': rng})
      feats = model.apply(variables, x, method='features')   # [B, hidden]

  Attributes:
    image_shape: (height, width, channels) of the images.
    num_classes: number of output classes K.
    widths: conv channels, one 3x3 conv and one 2x2 max-pool per entry. Pools use
      'SAME' padding, so odd sizes round up (28 -> 14 -> 7 -> 4).
    hidden: size of the penultimate dense layer, i.e. the feature dimension D.
    dropout: dropout rate on the features before the logits layer, active only with
      ``train=True`` (then the 'dropout' rng is needed unless the rate is 0).
    dtype: computation dtype; parameters, features and logits stay float32.
  """

  image_shape: Sequence[int] = (28, 28, 1)
  num_classes: int = 10
  widths: Sequence[int] = (32, 64)
  hidden: int = 128
  dropout: float = 0.0
  dtype: Dtype = jnp.float32

  def __post_init__(self) -> None:
    # Tuples keep the module hashable (jit-static) when a JSON config gives lists.
    self.image_shape = as_tuple(self.image_shape)
    self.widths = as_tuple(self.widths)
    if len(self.image_shape) != 3:
      raise ValueError(f'image_shape must be (height, width, channels), got {self.image_shape!r}')
    if int(self.num_classes) < 2:
      raise ValueError(f'num_classes must be at least 2, got {self.num_classes!r}')
    if int(self.hidden) < 1:
      raise ValueError(f'hidden must be a positive int, got {self.hidden!r}')
    if not 0.0 <= float(self.dropout) < 1.0:
      raise ValueError(f'dropout must be in [0, 1), got {self.dropout!r}')
    super().__post_init__()

  def setup(self) -> None:
    self.convs = [
      nn.Conv(
        width,
        (3, 3),
        padding='SAME',
        dtype=self.dtype,
        kernel_init=conv_kernel_init,
        name=f'conv_{i}',
      )
      for i, width in enumerate(self.widths)
    ]
    self.dense = nn.Dense(int(self.hidden), dtype=self.dtype, name='dense')
    self.drop = nn.Dropout(float(self.dropout))
    self.head = nn.Dense(int(self.num_classes), dtype=self.dtype, name='head')

  def _features(self, x: Array) -> Array:
    check_images(x, self.image_shape)
    x = x.astype(self.dtype)
    for conv in self.convs:
      x = nn.relu(conv(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2), padding='SAME')
    x = x.reshape((x.shape[0], -1))
    return nn.relu(self.dense(x))

  def features(self, x: Array) -> Array:
    """Images ``[B, H, W, C]`` in [0, 1] -> penultimate features ``[B, hidden]`` (float32).

    Post-ReLU and never dropped out: the FID features of an image are deterministic.
    """
    return self._features(x).astype(jnp.float32)

  def __call__(self, x: Array, train: bool = False) -> Array:
    """Images ``[B, H, W, C]`` in [0, 1] -> logits ``[B, num_classes]`` (float32)."""
    h = self.drop(self._features(x), deterministic=not train)
    return self.head(h).astype(jnp.float32)
