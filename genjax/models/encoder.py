"""A BERT-style bidirectional Transformer encoder (Devlin et al. 2019), pre-LayerNorm.

Token + learned position embeddings, the encoder-decoder's bidirectional blocks
(``seq2seq.EncoderBlock``: padding masked out of every attention) and a final LayerNorm.
Two heads on the same trunk, chosen by ``num_classes``:

- ``num_classes=0``: masked language modelling. Logits over the vocabulary from the tied
  token embedding (BERT's dense + GELU + LayerNorm transform, then the embedding's
  transpose and a bias), at the positions ``predict_at`` names (the ~15% chosen ones:
  the vocabulary product is the costly part) or at every position.
- ``num_classes>0``: classification. The mean of the final states over real tokens, a
  tanh "pooler" layer (BERT's) and a dense layer to the class logits.

The trunk's parameters (``wte``, ``wpe``, ``h_0``..., ``ln_f``) are named alike in both,
so a classifier starts from a pretrained encoder by copying them (``config.init_from``);
the heads (``mlm_head``, ``classifier_head``) are each mode's own.

Id 0 is padding (``PAD_ID``): padded positions are invisible to every attention and to
the pooling, so outputs at real positions do not depend on how much padding follows.
The embedding holds one id beyond the tokenizer's, ``mask_id == vocab_size``: the
[MASK] token of pretraining, which the tokenizer itself never produces.

::

    model = Encoder(vocab_size=2048, max_length=128)
    variables = model.init(rng, tokens)                        # int [B, T], T <= 128
    logits = model.apply(variables, tokens, predict_at=at)     # float32 [B, K, 2048]
    features = model.apply(variables, tokens, method=model.embed)   # float32 [B, width]

    config, model, variables = genjax.load('runs/bert')        # a pretrained encoder
    features = model.apply(variables, tokens, method=model.embed)
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from genjax.models import dropout as dropout_lib
from genjax.models.layers import Dtype
from genjax.models.seq2seq import PAD_ID, EncoderBlock, MLMHead, masked_mean, padding_bias
from genjax.models.transformer import (
  EMBED,
  INIT_STDDEV,
  POSITION,
  VOCAB,
  _layer_norm,
  dense_layer,
  embedding_init,
  remat_policy,
  rematted,
)

Array = jnp.ndarray


class ClassifierHead(nn.Module):
  """Pooled features -> tanh dense (BERT's pooler) -> dropout -> class logits."""

  num_classes: int
  dropout: float = 0.0
  dtype: Dtype = jnp.float32
  dropout_bits: int = 8

  @nn.compact
  def __call__(self, pooled: Array, train: bool, example_ids: Array | None) -> Array:
    x = jnp.tanh(dense_layer(pooled.shape[-1], True, self.dtype, 'pooler')(pooled))
    x = dropout_lib.Dropout(self.dropout, self.dropout_bits)(x, not train, example_ids)
    return dense_layer(self.num_classes, True, jnp.float32, 'logits')(x).astype(jnp.float32)


class Encoder(nn.Module):
  """Bidirectional encoder: int tokens ``[B, T]`` (0 = padding) -> float32 logits.

  ``__call__`` gives masked-token logits ``[B, K, vocab_size]`` at ``predict_at`` (int
  ``[B, K]`` positions; all T positions when None) with ``num_classes=0``, else class
  logits ``[B, num_classes]``. ``encode`` gives the final states ``[B, T, width]`` and
  ``embed`` their mean over real tokens ``[B, width]``: features for other models.

  ``example_ids`` (int ``[B]``, with ``train=True``): each example's position in the
  global batch, so dropout masks do not depend on how the batch is split over devices.

  Attributes:
    vocab_size: the tokenizer's ids; the embedding has one more, ``mask_id``.
    max_length: positions (the longest input).
    num_layers, num_heads, width, mlp_ratio: the blocks (heads must divide width).
    dropout: rate on the embeddings, on every attention and MLP output and on the pooled
      features (with ``train=True``, from the 'dropout' rng collection).
    num_classes: 0 for the masked-language-model head, else the classifier's classes.
    use_bias: biases in the dense layers and LayerNorms.
    dtype: computation dtype; parameters, LayerNorm statistics, softmax and logits stay
      float32.
    remat: the blocks' activation checkpointing (``transformer.REMAT_POLICIES``).
    dropout_bits: 8 or 32 random bits per dropout mask element (``genjax.models.dropout``).
  """

  vocab_size: int
  max_length: int = 128
  num_layers: int = 4
  num_heads: int = 4
  width: int = 192
  mlp_ratio: int = 4
  dropout: float = 0.1
  num_classes: int = 0
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  remat: bool | str = 'none'
  dropout_bits: int = 8

  def __post_init__(self) -> None:
    remat_policy(self.remat)
    for name in ('vocab_size', 'max_length', 'num_layers', 'num_heads', 'width', 'mlp_ratio'):
      if getattr(self, name) <= 0:
        raise ValueError(f'Encoder: {name} must be positive, got {getattr(self, name)}')
    if self.width % self.num_heads:
      raise ValueError(
        f'Encoder: width ({self.width}) must be divisible by num_heads ({self.num_heads})'
      )
    if self.num_classes < 0:
      raise ValueError(f'Encoder: num_classes must be >= 0, got {self.num_classes}')
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f'Encoder: dropout must be in [0, 1), got {self.dropout}')
    if self.dropout_bits not in dropout_lib.BITS:
      raise ValueError(f'Encoder: dropout_bits must be one of {dropout_lib.BITS}')
    super().__post_init__()

  @property
  def mask_id(self) -> int:
    """The [MASK] token's id: one past the tokenizer's."""
    return self.vocab_size

  def setup(self):
    # Modules made in setup take their names from the attributes (h: h_0, h_1, ...).
    self.wte = nn.Embed(
      self.vocab_size + 1, self.width, embedding_init=embedding_init(INIT_STDDEV, (VOCAB, EMBED))
    )
    self.wpe = nn.Embed(
      self.max_length, self.width, embedding_init=embedding_init(INIT_STDDEV, (POSITION, EMBED))
    )
    self.drop = dropout_lib.Dropout(self.dropout, self.dropout_bits)
    self.h = [
      rematted(EncoderBlock, self.remat, train_argnum=3)(
        self.num_heads,
        self.num_layers,
        self.mlp_ratio,
        self.dropout,
        self.use_bias,
        self.dtype,
        self.dropout_bits,
      )
      for _ in range(self.num_layers)
    ]
    self.ln_f = _layer_norm(self.use_bias, jnp.float32, None)
    if self.num_classes:
      self.classifier_head = ClassifierHead(
        self.num_classes, self.dropout, self.dtype, self.dropout_bits
      )
    else:
      self.mlm_head = MLMHead(self.use_bias, self.dtype)

  def encode(
    self, tokens: Array, *, train: bool = False, example_ids: Array | None = None
  ) -> Array:
    """``[B, T, width]`` final states (those at padding positions are not meaningful)."""
    tokens = jnp.asarray(tokens)
    if tokens.ndim != 2 or not jnp.issubdtype(tokens.dtype, jnp.integer):
      raise ValueError(
        f'Encoder expects integer tokens of shape [batch, length], got '
        f'{tokens.dtype} {tuple(tokens.shape)}'
      )
    if tokens.shape[1] > self.max_length:
      raise ValueError(
        f'{tokens.shape[1]} tokens exceed max_length={self.max_length}: truncate the '
        f'input to {self.max_length} tokens'
      )
    bias = padding_bias(tokens != PAD_ID)
    x = self.wte(tokens) + self.wpe(jnp.arange(tokens.shape[1]))[None]
    x = self.drop(x, not train, example_ids)
    for block in self.h:
      x = block(x, bias, train, example_ids)
    return self.ln_f(x.astype(jnp.float32))

  def embed(self, tokens: Array) -> Array:
    """``[B, width]`` features of each sequence: the mean of its final states over its
    real (non-padding) tokens. The same in both modes, and free of any head."""
    tokens = jnp.asarray(tokens)
    return masked_mean(self.encode(tokens), tokens != PAD_ID)

  def __call__(
    self,
    tokens: Array,
    predict_at: Array | None = None,
    *,
    train: bool = False,
    example_ids: Array | None = None,
  ) -> Array:
    tokens = jnp.asarray(tokens)
    states = self.encode(tokens, train=train, example_ids=example_ids)
    if self.num_classes:
      if predict_at is not None:
        raise ValueError('predict_at is for the masked-language-model head (num_classes=0)')
      pooled = masked_mean(states, tokens != PAD_ID)
      return self.classifier_head(pooled, train, example_ids)
    if predict_at is not None:
      states = jnp.take_along_axis(states, jnp.asarray(predict_at)[..., None], axis=1)
    # The [MASK] row is an input only: never predicted.
    return self.mlm_head(states, self.wte.embedding[: self.vocab_size])
