"""An encoder-decoder Transformer (Vaswani et al. 2017) with pre-LayerNorm blocks.

A bidirectional encoder over the source, with padding masked out of its attention, and a
causal decoder whose blocks add cross-attention to the encoder's output. The decoder's
self-attention and the MLPs are ``DecoderLM``'s own blocks (``genjax.models.transformer``);
dropout is drawn per example there too. Source and target share one vocabulary (a joint
BPE), and optionally one embedding, which also gives the output logits.

::

    model = EncoderDecoder(vocab_size=8000, max_length=128)
    variables = model.init(rng, source, target_in)       # int [B, S], int [B, T]
    logits = model.apply(variables, source, target_in)   # float32 [B, T, vocab]

    memory = model.apply(variables, source, method=model.encode)
    cross = model.apply(variables, memory, method=model.project_memory)  # once per source
    cache = model.init_cache(batch_size=B, length=T_max)
    logits, cache = model.apply(variables, tokens, cross, source != PAD_ID, cache=cache,
                                cache_index=i, method=model.decode_step)

Id 0 is padding in the source (``PAD_ID``); positions holding it are invisible to every
attention. ``Seq2SeqDecoder`` adapts the model to ``genjax.models.decoding``'s samplers
and to ``beam_search``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models import dropout as dropout_lib
from genjax.models.layers import Dtype
from genjax.models.transformer import (
  INIT_STDDEV,
  EMBED,
  HEADS,
  MLP,
  POSITION,
  VOCAB,
  CausalSelfAttention,
  _dense,
  _flat,
  _layer_norm,
  _residual_stddev,
  check_fields,
  dense_layer,
  embedding_init,
  gelu,
  remat_policy,
  rematted,
)

Array = jnp.ndarray
PAD_ID = 0
POSITIONS = ('learned', 'sinusoidal')


def sinusoidal_positions(length: int, width: int) -> Array:
  """The original Transformer's fixed position encodings, ``[length, width]``."""
  position = jnp.arange(length, dtype=jnp.float32)[:, None]
  rates = jnp.exp(-math.log(10_000.0) * jnp.arange(0, width, 2, dtype=jnp.float32) / width)
  table = jnp.zeros((length, width), jnp.float32)
  table = table.at[:, 0::2].set(jnp.sin(position * rates))
  return table.at[:, 1::2].set(jnp.cos(position * rates[: width // 2]))


def padding_bias(mask: Array) -> Array:
  """``[B, 1, 1, S]`` additive attention bias: 0 where ``mask`` [B, S] is True, else -inf.

  A large negative number rather than -inf, so a row with no visible key (an empty
  source) gives uniform weights instead of NaN.
  """
  return jnp.where(mask, 0.0, -1e9).astype(jnp.float32)[:, None, None, :]


def attend(q: Array, k: Array, v: Array, bias: Array) -> Array:
  """Softmax attention of ``q`` [B, T, H, D] over ``k``, ``v`` [B, S, H, D] plus ``bias``."""
  scores = jnp.einsum('bqhd,bkhd->bhqk', q, k * (q.shape[-1] ** -0.5)).astype(jnp.float32)
  weights = jax.nn.softmax(scores + bias, axis=-1).astype(v.dtype)
  return jnp.einsum('bhqk,bkhd->bqhd', weights, v)


class EncoderSelfAttention(nn.Module):
  """Bidirectional multi-head self-attention; padding positions are never attended to."""

  num_heads: int
  num_layers: int
  dropout: float = 0.0
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  dropout_bits: int = 8
  weight_init: str = 'gpt'  # see transformer.INITS

  @nn.compact
  def __call__(self, x: Array, bias: Array, train: bool, example_ids: Array | None) -> Array:
    batch, length, width = x.shape
    qkv = _dense(
      3 * width,
      self.use_bias,
      self.dtype,
      'c_attn',
      weight_init=self.weight_init,
      parts=3,
      axes=(EMBED, HEADS),
    )(x)
    q, k, v = (
      part.reshape(batch, length, self.num_heads, width // self.num_heads)
      for part in jnp.split(qkv, 3, axis=-1)
    )
    y = attend(q, k, v, bias).reshape(batch, length, width)
    stddev = _residual_stddev(self.num_layers)
    y = _dense(
      width, self.use_bias, self.dtype, 'c_proj', stddev, self.weight_init, axes=(HEADS, EMBED)
    )(y)
    return dropout_lib.Dropout(self.dropout, self.dropout_bits)(y, not train, example_ids)


class CrossAttention(nn.Module):
  """The decoder attending to the encoder's output; its keys and values are projected once
  per source (``project``) and reused at every decoding step."""

  width: int
  num_heads: int
  num_layers: int
  dropout: float = 0.0
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  dropout_bits: int = 8

  def setup(self):
    # Modules made in setup take their names from the attributes.
    heads = dict(axes=(EMBED, HEADS))
    self.query = dense_layer(self.width, self.use_bias, self.dtype, None, **heads)
    self.key_value = dense_layer(2 * self.width, self.use_bias, self.dtype, None, **heads)
    stddev = _residual_stddev(self.num_layers)
    self.c_proj = dense_layer(
      self.width, self.use_bias, self.dtype, None, stddev, axes=(HEADS, EMBED)
    )
    self.drop = dropout_lib.Dropout(self.dropout, self.dropout_bits)

  def _heads(self, x: Array) -> Array:
    return x.reshape(*x.shape[:2], self.num_heads, self.width // self.num_heads)

  def project(self, memory: Array) -> dict[str, Array]:
    keys, values = jnp.split(_flat(self.key_value)(memory), 2, axis=-1)
    return {'keys': self._heads(keys), 'values': self._heads(values)}

  def __call__(
    self, x: Array, memory_kv: dict[str, Array], bias: Array, train: bool, example_ids
  ) -> Array:
    q = self._heads(_flat(self.query)(x))
    y = attend(q, memory_kv['keys'], memory_kv['values'], bias)
    y = _flat(self.c_proj)(y.reshape(*x.shape[:2], self.width))
    return self.drop(y, not train, example_ids)


def masked_mean(states: Array, mask: Array) -> Array:
  """``[B, T, D]`` states averaged over the positions where ``mask`` [B, T] is True."""
  weights = mask.astype(jnp.float32)[..., None]
  total = jnp.sum(states.astype(jnp.float32) * weights, axis=1)
  return total / jnp.maximum(jnp.sum(weights, axis=1), 1.0)  # an empty row gives zeros


class MLMHead(nn.Module):
  """BERT's masked-token prediction: dense + GELU + LayerNorm, then the tied embedding."""

  use_bias: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, embedding: Array) -> Array:
    x = _flat(dense_layer(x.shape[-1], self.use_bias, self.dtype, 'transform'))(x)
    x = _layer_norm(self.use_bias, jnp.float32, 'ln')(gelu(x).astype(jnp.float32))
    bias = self.param('bias', nn.initializers.zeros, (embedding.shape[0],))
    logits = _flat(lambda h: h @ embedding.T.astype(jnp.float32))(x)
    return logits + bias


class EncoderBlock(nn.Module):
  num_heads: int
  num_layers: int
  mlp_ratio: int = 4
  dropout: float = 0.0
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  dropout_bits: int = 8
  weight_init: str = 'gpt'  # see transformer.INITS

  @nn.compact
  def __call__(self, x: Array, bias: Array, train: bool, example_ids: Array | None) -> Array:
    ln = lambda name: _layer_norm(self.use_bias, self.dtype, name)
    x = x + EncoderSelfAttention(
      self.num_heads,
      self.num_layers,
      self.dropout,
      self.use_bias,
      self.dtype,
      self.dropout_bits,
      self.weight_init,
      name='attn',
    )(ln('ln_1')(x), bias, train, example_ids)
    mlp = MLP(
      self.num_layers,
      self.mlp_ratio,
      self.dropout,
      self.use_bias,
      self.dtype,
      self.dropout_bits,
      self.weight_init,
      name='mlp',
    )
    return x + mlp(ln('ln_2')(x), train, example_ids)


class DecoderBlock(nn.Module):
  """Causal self-attention (``DecoderLM``'s, with its cache), cross-attention, MLP."""

  width: int
  num_heads: int
  num_layers: int
  mlp_ratio: int = 4
  dropout: float = 0.0
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  attention: str = 'auto'
  dropout_bits: int = 8

  def setup(self):
    self.ln_1 = _layer_norm(self.use_bias, self.dtype, None)
    self.attn = CausalSelfAttention(
      self.num_heads,
      self.num_layers,
      self.dropout,
      self.use_bias,
      self.dtype,
      self.attention,
      self.dropout_bits,
    )
    self.ln_cross = _layer_norm(self.use_bias, self.dtype, None)
    self.cross = CrossAttention(
      self.width,
      self.num_heads,
      self.num_layers,
      self.dropout,
      self.use_bias,
      self.dtype,
      self.dropout_bits,
    )
    self.ln_2 = _layer_norm(self.use_bias, self.dtype, None)
    self.mlp = MLP(
      self.num_layers, self.mlp_ratio, self.dropout, self.use_bias, self.dtype, self.dropout_bits
    )

  def project(self, memory: Array) -> dict[str, Array]:
    return self.cross.project(memory)

  def __call__(self, x, memory_kv, bias, train, cache, cache_index, example_ids):
    y, cache = self.attn(self.ln_1(x), train, cache, cache_index, example_ids)
    x = x + y
    x = x + self.cross(self.ln_cross(x), memory_kv, bias, train, example_ids)
    return x + self.mlp(self.ln_2(x), train, example_ids), cache


class EncoderDecoder(nn.Module):
  """Source tokens ``[B, S]`` and target inputs ``[B, T]`` -> float32 logits ``[B, T, vocab]``.

  Attributes:
    vocab_size: the joint source/target vocabulary; id 0 is padding.
    max_length: positions of the source and of the target (each at most this long).
    num_encoder_layers, num_decoder_layers: blocks of each side.
    num_heads: attention heads; must divide width.
    width: embedding size.
    mlp_ratio: hidden size of the MLPs over width.
    dropout: rate on the embeddings and on every attention and MLP output (with
      ``train=True``, from the 'dropout' rng collection; per example with example_ids).
    positions: 'learned' (GPT's) or 'sinusoidal' (the original Transformer's; the token
      embeddings are then scaled by sqrt(width), as there).
    share_embeddings: one embedding for source, target and the output projection (a joint
      vocabulary's usual choice); else three.
    use_bias: biases in the dense layers and LayerNorms.
    dtype: computation dtype; parameters, softmax, residual stream and logits stay float32.
    remat: the blocks' activation checkpointing (``transformer.REMAT_POLICIES``).
    attention: the decoder self-attention's implementation (``causal_attention``).
    dropout_bits: 8 or 32 random bits per dropout mask element (``genjax.models.dropout``).
    source_prediction: a masked-token head on the encoder's output (BERT's, on the tied
      embedding): ``__call__(..., predict_source_at=...)`` also gives its logits, for an
      auxiliary loss that keeps the encoder's states about their tokens when the targets
      alone teach it little (summaries).
    bag_prediction: a head from the mean of the encoder's output over the source to
      logits over the vocabulary: ``__call__(..., predict_bag=True)`` also gives them, for
      an auxiliary loss on the target's bag of tokens (the encoder then holds, in the
      very average a cross-attention starts by taking, what the target is about).
  """

  vocab_size: int
  max_length: int = 128
  num_encoder_layers: int = 3
  num_decoder_layers: int = 3
  num_heads: int = 4
  width: int = 256
  mlp_ratio: int = 2
  dropout: float = 0.1
  positions: str = 'learned'
  share_embeddings: bool = True
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  remat: bool | str = 'none'
  attention: str = 'auto'
  dropout_bits: int = 8
  source_prediction: bool = False
  bag_prediction: bool = False

  def __post_init__(self) -> None:
    remat_policy(self.remat)
    check_fields(self, ('vocab_size', 'max_length', 'num_encoder_layers', 'num_decoder_layers'))
    if self.positions not in POSITIONS:
      raise ValueError(
        f'EncoderDecoder: positions must be one of {POSITIONS}, got {self.positions!r}'
      )
    super().__post_init__()

  def setup(self):
    sinusoidal = self.positions == 'sinusoidal'
    stddev = self.width**-0.5 if sinusoidal else INIT_STDDEV
    embed = lambda: nn.Embed(
      self.vocab_size, self.width, embedding_init=embedding_init(stddev, (VOCAB, EMBED))
    )
    # Modules made in setup take their names from the attributes.
    self.embed = embed()
    if not self.share_embeddings:
      self.target_embed = embed()
      self.logits = dense_layer(self.vocab_size, False, jnp.float32, None, axes=(EMBED, VOCAB))
    if not sinusoidal:
      learned = lambda: nn.Embed(
        self.max_length,
        self.width,
        embedding_init=embedding_init(INIT_STDDEV, (POSITION, EMBED)),
      )
      self.source_wpe, self.target_wpe = learned(), learned()
    self.drop = dropout_lib.Dropout(self.dropout, self.dropout_bits)
    layers = self.num_encoder_layers + self.num_decoder_layers
    self.encoder_blocks = [
      rematted(EncoderBlock, self.remat, train_argnum=3)(
        self.num_heads,
        layers,
        self.mlp_ratio,
        self.dropout,
        self.use_bias,
        self.dtype,
        self.dropout_bits,
      )
      for i in range(self.num_encoder_layers)
    ]
    self.decoder_blocks = [
      rematted(DecoderBlock, self.remat, train_argnum=4)(
        self.width,
        self.num_heads,
        layers,
        self.mlp_ratio,
        self.dropout,
        self.use_bias,
        self.dtype,
        self.attention,
        self.dropout_bits,
      )
      for i in range(self.num_decoder_layers)
    ]
    self.encoder_ln = _layer_norm(self.use_bias, self.dtype, None)
    self.decoder_ln = _layer_norm(self.use_bias, jnp.float32, None)
    if self.source_prediction:
      self.source_head = MLMHead(self.use_bias, self.dtype)
    if self.bag_prediction:
      self.bag_head = MLMHead(self.use_bias, self.dtype)

  def _embed(self, embed, positions, tokens: Array, offset, train, example_ids) -> Array:
    length = tokens.shape[1]
    if length > self.max_length:
      raise ValueError(
        f'{length} tokens exceed max_length={self.max_length}: truncate the input to '
        f'{self.max_length} tokens'
      )
    index = jnp.arange(length) + offset
    if self.positions == 'sinusoidal':
      table = sinusoidal_positions(self.max_length, self.width)
      x = embed(tokens) * math.sqrt(self.width) + jnp.take(table, index, axis=0)[None]
    else:
      x = embed(tokens) + positions(index)[None]
    return self.drop(x, not train, example_ids)

  def encode(
    self, source: Array, *, train: bool = False, example_ids: Array | None = None
  ) -> Array:
    """``[B, S, width]``: the encoder's output (its values at padding positions are unused)."""
    source = jnp.asarray(source)
    bias = padding_bias(source != PAD_ID)
    x = self._embed(self.embed, getattr(self, 'source_wpe', None), source, 0, train, example_ids)
    for block in self.encoder_blocks:
      x = block(x, bias, train, example_ids)
    return self.encoder_ln(x)

  def project_memory(self, memory: Array) -> tuple[dict[str, Array], ...]:
    """Every decoder layer's cross-attention keys and values of ``memory``: computed once."""
    return tuple(block.project(memory) for block in self.decoder_blocks)

  @nn.nowrap
  def init_cache(self, batch_size: int, length: int | None = None, dtype: Dtype | None = None):
    """Empty self-attention keys and values for ``length`` target positions (max_length)."""
    length = self.max_length if length is None else length
    shape = (batch_size, length, self.num_heads, self.width // self.num_heads)
    dtype = self.dtype if dtype is None else dtype
    return tuple(
      {'keys': jnp.zeros(shape, dtype), 'values': jnp.zeros(shape, dtype)}
      for _ in range(self.num_decoder_layers)
    )

  def decode_step(
    self,
    target: Array,
    memory_kv: tuple[dict[str, Array], ...],
    source_mask: Array,
    *,
    train: bool = False,
    cache=None,
    cache_index: Array | int | None = None,
    example_ids: Array | None = None,
  ):
    """Decoder logits ``[B, T, vocab]`` for ``target`` at positions 0.. (no cache) or at
    ``cache_index..`` (with ``cache``; returns ``(logits, cache)`` then)."""
    target = jnp.asarray(target)
    bias = padding_bias(source_mask)
    offset = 0 if cache is None else cache_index
    target_embed = self.embed if self.share_embeddings else self.target_embed
    x = self._embed(
      target_embed,
      getattr(self, 'target_wpe', None),
      target,
      offset,
      train,
      example_ids,
    )
    new_cache = []
    for i, block in enumerate(self.decoder_blocks):
      x, layer_cache = block(
        x,
        memory_kv[i],
        bias,
        train,
        None if cache is None else cache[i],
        cache_index,
        example_ids,
      )
      new_cache.append(layer_cache)
    x = self.decoder_ln(x.astype(jnp.float32))
    logits = _flat(self.embed.attend if self.share_embeddings else self.logits)(x)
    return logits if cache is None else (logits, tuple(new_cache))

  def __call__(
    self,
    source: Array,
    target: Array,
    *,
    train: bool = False,
    example_ids: Array | None = None,
    predict_source_at: Array | None = None,
    predict_bag: bool = False,
  ):
    """Logits ``[B, T, vocab]``; with an auxiliary head asked for, ``(logits, aux)`` where
    ``aux['source']`` is the source head's ``[B, K, vocab]`` at ``predict_source_at``
    (int ``[B, K]`` source positions) and ``aux['bag']`` the bag head's ``[B, vocab]``."""
    source = jnp.asarray(source)
    memory = self.encode(source, train=train, example_ids=example_ids)
    logits = self.decode_step(
      target,
      self.project_memory(memory),
      source != PAD_ID,
      train=train,
      example_ids=example_ids,
    )
    embedding = self.embed.embedding
    if self.is_initializing():  # the heads' parameters exist from the start
      if self.source_prediction:
        self.source_head(memory[:, :1], embedding)
      if self.bag_prediction:
        self.bag_head(memory[:, 0], embedding)
    aux = {}
    if predict_source_at is not None:
      if not self.source_prediction:
        raise ValueError('predict_source_at needs an EncoderDecoder(source_prediction=True)')
      at = jnp.asarray(predict_source_at)[..., None]
      aux['source'] = self.source_head(jnp.take_along_axis(memory, at, axis=1), embedding)
    if predict_bag:
      if not self.bag_prediction:
        raise ValueError('predict_bag needs an EncoderDecoder(bag_prediction=True)')
      aux['bag'] = self.bag_head(masked_mean(memory, source != PAD_ID), embedding)
    return (logits, aux) if aux else logits


@dataclasses.dataclass(frozen=True)
class Seq2SeqDecoder:
  """An ``EncoderDecoder`` as a ``genjax.models.decoding.Decoder``, for one batch of sources.

  Its variables are ``encoded(variables, source)``: the parameters, the encoder's output
  (for the cache-free ``forward``), the cross-attention keys and values projected from it
  once (for ``step``) and the source mask. ``length``: the target positions decoded.
  """

  model: EncoderDecoder
  length: int | None = None

  @property
  def context(self) -> int:
    return self.model.max_length if self.length is None else self.length

  def encoded(self, variables: Any, source: Array) -> dict[str, Any]:
    memory = self.model.apply(variables, source, method=self.model.encode)
    return {
      'params': variables['params'],
      'memory': memory,
      'memory_kv': self.model.apply(variables, memory, method=self.model.project_memory),
      'source_mask': jnp.asarray(source) != PAD_ID,
    }

  def init_cache(self, batch: int) -> Any:
    return self.model.init_cache(batch, self.context)

  def step(self, variables: Any, tokens: Array, cache: Any, index: Array | int):
    return self.model.apply(
      {'params': variables['params']},
      tokens,
      variables['memory_kv'],
      variables['source_mask'],
      cache=cache,
      cache_index=index,
      method=self.model.decode_step,
    )

  def forward(self, variables: Any, tokens: Array) -> Array:
    memory_kv = self.model.apply(
      {'params': variables['params']}, variables['memory'], method=self.model.project_memory
    )
    return self.model.apply(
      {'params': variables['params']},
      tokens,
      memory_kv,
      variables['source_mask'],
      method=self.model.decode_step,
    )

  def repeat_batch(self, variables: Any, times: int) -> Any:
    """The variables of each source repeated ``times`` (beam search's beams), in order."""
    repeat = lambda x: jnp.repeat(x, times, axis=0)
    return {
      'params': variables['params'],
      'memory': repeat(variables['memory']),
      'memory_kv': jax.tree.map(repeat, variables['memory_kv']),
      'source_mask': repeat(variables['source_mask']),
    }
