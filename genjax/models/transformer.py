"""A GPT decoder-only language model, layer for layer as nanoGPT (karpathy/nanoGPT model.py).

Token + learned position embeddings, pre-LayerNorm blocks of causal multi-head
self-attention and a GELU MLP, a final LayerNorm, and logits from the token embedding
(tied weights). Besides the plain forward over up to ``block_size`` tokens it runs
incrementally on a key/value cache, which ``genjax.models.decoding`` uses to generate.

::

    model = DecoderLM(vocab_size=65, block_size=256)
    variables = model.init(rng, tokens)                 # tokens: int [B, T], T <= 256
    # The weights come boxed with their logical axis names (nn.LogicallyPartitioned);
    # apply takes them as they are, nn.unbox(variables) gives plain arrays.
    logits = model.apply(variables, tokens)             # float32 [B, T, 65]
    logits = model.apply(variables, tokens, train=True, rngs={'dropout': key})
    logits = model.apply(variables, tokens, train=True, rngs={'dropout': key},
                         example_ids=jnp.arange(len(tokens)))  # per-example masks

    cache = model.init_cache(batch_size=B)
    logits, cache = model.apply(variables, prompt, cache=cache, cache_index=0)
    logits, cache = model.apply(variables, next_token[:, None], cache=cache,
                                cache_index=prompt.shape[1])
"""

from __future__ import annotations

import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from genjax.models import dropout as dropout_lib
from genjax.models.layers import Dtype

Array = jnp.ndarray
# Per layer {'keys', 'values'}, each [batch, block_size, num_heads, head_dim].
Cache = tuple[dict[str, Array], ...]

INIT_STDDEV = 0.02
# torch.nn.LayerNorm's default; flax's is 1e-6.
LAYER_NORM_EPSILON = 1e-5


def _flat(layer: Callable[[Array], Array]) -> Callable[[Array], Array]:
  """``layer`` applied to ``[..., D]`` as one ``[N, D]`` matrix product.

  Same parameters and numbers; on XLA:CPU the backward pass of a dense layer on a 3-D
  ``[B, T, D]`` input ran 2.5x slower than on the flattened 2-D one (measured on the
  CPU-size MLP), as its weight gradients then contract over two dimensions.
  """

  def apply(x: Array) -> Array:
    y = layer(x.reshape(-1, x.shape[-1]))
    return y.reshape(*x.shape[:-1], y.shape[-1])

  return apply


# How the blocks' dense kernels start (a ``weight_init`` field on the modules that hold them):
#   'gpt': normal(0.02), and 0.02 / sqrt(2 * num_layers) for the projections that write
#     into the residual stream (GPT-2, nanoGPT).
#   'xavier': Glorot-uniform (the original Transformer's, and ViT's in big_vision), with
#     each part of a fused projection (q, k and v of c_attn) scaled as its own matrix. At
#     width 64 and 6 blocks, 'gpt''s spreads are 5 to 22 times narrower than Glorot's, and
#     a small ViT learned more slowly from them (the issue-17 note has the comparison).
INITS = ('gpt', 'xavier')

# Logical names of the weights' axes (flax's logical partitioning): the kernels and
# embeddings carry them from init, and `parallel.logical_axis_rules` maps them onto the
# mesh, e.g. 'heads' and 'mlp' onto 'model' for tensor parallelism (genjax.step.sharding).
# `train_step.initial_state` takes the values out of their boxes, so the state and the
# checkpoints hold plain arrays; `model.init` alone returns them boxed, as flax does, and
# `model.apply` takes either.
EMBED, HEADS, MLP_AXIS, VOCAB, POSITION = 'embed', 'heads', 'mlp', 'vocab', 'position'


def kernel_init(
  weight_init: str, stddev: float = INIT_STDDEV, parts: int = 1
) -> nn.initializers.Initializer:
  """The initializer ``weight_init`` names; ``parts``: how many matrices a fused kernel holds.

  ``stddev`` is 'gpt''s; 'xavier' derives its scale from the kernel's shape.
  """
  if weight_init == 'gpt':
    return nn.initializers.normal(stddev=stddev)
  if weight_init != 'xavier':
    raise ValueError(f'weight_init must be one of {INITS}, got {weight_init!r}')
  # The parts axis is a batch axis: it does not count towards the fans.
  glorot = nn.initializers.xavier_uniform(in_axis=0, out_axis=2, batch_axis=(1,))

  def fused(key, shape, dtype=jnp.float32):
    fan_in, features = shape
    return glorot(key, (fan_in, parts, features // parts), dtype).reshape(shape)

  return fused


def dense_layer(
  features: int,
  use_bias: bool,
  dtype: Dtype,
  name: str | None,
  stddev: float = INIT_STDDEV,
  weight_init: str = 'gpt',
  parts: int = 1,
  axes: tuple[str, str] | None = None,
) -> nn.Dense:
  """A dense layer with zero biases and ``weight_init`` kernels (GPT's by default);
  ``axes``: the kernel's logical axis names (in, out), the bias takes the second."""
  kernel, bias = kernel_init(weight_init, stddev, parts), nn.initializers.zeros
  if axes is not None:
    kernel = nn.with_logical_partitioning(kernel, axes)
    bias = nn.with_logical_partitioning(bias, axes[1:])
  return nn.Dense(
    features, use_bias=use_bias, dtype=dtype, name=name, kernel_init=kernel, bias_init=bias
  )


def embedding_init(stddev: float, axes: tuple[str, str]) -> nn.initializers.Initializer:
  """normal(stddev) for an [entries, width] table whose axes are named ``axes``."""
  return nn.with_logical_partitioning(nn.initializers.normal(stddev=stddev), axes)


def _dense(
  features: int,
  use_bias: bool,
  dtype: Dtype,
  name: str,
  stddev: float = INIT_STDDEV,
  weight_init: str = 'gpt',
  parts: int = 1,
  axes: tuple[str, str] | None = None,
) -> Callable[[Array], Array]:
  return _flat(dense_layer(features, use_bias, dtype, name, stddev, weight_init, parts, axes))


def _layer_norm(use_bias: bool, dtype: Dtype, name: str) -> nn.LayerNorm:
  # flax computes the statistics in float32 whatever ``dtype`` is.
  return nn.LayerNorm(epsilon=LAYER_NORM_EPSILON, use_bias=use_bias, dtype=dtype, name=name)


def _residual_stddev(num_layers: int) -> float:
  # GPT-2's scaling of the projections that write into the residual stream: the stream's
  # variance then does not grow with depth.
  return INIT_STDDEV / math.sqrt(2 * num_layers)


def cached_attention_mask(cache_index: Array | int, length: int, block_size: int) -> Array:
  """``[1, 1, length, block_size]``: query i (at cache_index + i) sees keys at <= its position.

  Cache slots past the queries, stale from an earlier, longer context, stay masked.
  """
  query_positions = cache_index + jnp.arange(length)
  key_positions = jnp.arange(block_size)
  return (key_positions[None, :] <= query_positions[:, None])[None, None]


ATTENTION_IMPLS = ('auto', 'xla', 'cudnn', 'einsum')


def causal_attention(q: Array, k: Array, v: Array, impl: str = 'xla') -> Array:
  """Causal softmax attention over ``[B, T, heads, head_dim]``; returns the same shape.

  'xla' and 'cudnn' are ``jax.nn.dot_product_attention`` (cuDNN's fused flash kernel on
  NVIDIA GPUs); 'einsum' spells it out with an additive causal bias. 'auto' is 'einsum'
  on CPU, where XLA fuses it better (a 2-core CPU step of the default 6x384 model, context
  256: 16.5 s against 18.6 s; equal at the 4x128 CPU size), and 'xla' elsewhere.
  """
  if impl == 'auto':
    impl = 'einsum' if jax.default_backend() == 'cpu' else 'xla'
  if impl == 'xla':
    return jax.nn.dot_product_attention(q, k, v, is_causal=True)
  if impl == 'cudnn':
    return jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation='cudnn')
  length = q.shape[1]
  scores = jnp.einsum('bqhd,bkhd->bhqk', q, k * (q.shape[-1] ** -0.5)).astype(jnp.float32)
  causal = jnp.tril(jnp.ones((length, length), bool))
  scores = scores + jnp.where(causal, 0.0, -jnp.inf)
  weights = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
  return jnp.einsum('bhqk,bkhd->bqhd', weights, v)


class CausalSelfAttention(nn.Module):
  """Multi-head causal self-attention with one fused qkv projection (nanoGPT's c_attn)."""

  num_heads: int
  num_layers: int
  dropout: float = 0.0
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  attention: str = 'auto'  # see causal_attention
  dropout_bits: int = 8  # see DecoderLM

  @nn.compact
  def __call__(
    self,
    x: Array,
    train: bool,
    cache: dict[str, Array] | None = None,
    cache_index: Array | int | None = None,
    example_ids: Array | None = None,
  ) -> tuple[Array, dict[str, Array] | None]:
    batch, length, width = x.shape
    head_dim = width // self.num_heads
    qkv = _dense(3 * width, self.use_bias, self.dtype, 'c_attn', axes=(EMBED, HEADS))(x)
    q, k, v = (
      part.reshape(batch, length, self.num_heads, head_dim) for part in jnp.split(qkv, 3, axis=-1)
    )
    if cache is None:
      y = causal_attention(q, k, v, self.attention)
    else:
      start = (0, cache_index, 0, 0)
      cache = {
        'keys': lax.dynamic_update_slice(cache['keys'], k.astype(cache['keys'].dtype), start),
        'values': lax.dynamic_update_slice(cache['values'], v.astype(cache['values'].dtype), start),
      }
      block_size = cache['keys'].shape[1]
      mask = cached_attention_mask(cache_index, length, block_size)
      y = jax.nn.dot_product_attention(
        q, cache['keys'].astype(q.dtype), cache['values'].astype(q.dtype), mask=mask
      )
    y = y.reshape(batch, length, width)
    y = _dense(
      width,
      self.use_bias,
      self.dtype,
      'c_proj',
      stddev=_residual_stddev(self.num_layers),
      axes=(HEADS, EMBED),
    )(y)
    y = dropout_lib.Dropout(self.dropout, self.dropout_bits)(y, not train, example_ids)
    return y, cache


def gelu(x: Array) -> Array:
  """Exact GELU, ``x * Phi(x)``, spelled with erf as torch's ``nn.GELU()`` computes it.

  ``nn.gelu(x, approximate=False)`` gives the same values (to 5e-7) through erfc, whose
  exponential and range selects XLA:CPU runs 2.9x slower on a [384, 512] activation; the
  CPU-size train step took 49.5 against 45.6 ms and 59.2 against 41.8 ms (medians of 20
  interleaved chunks of 20 steps, two runs).
  """
  return 0.5 * x * (1.0 + lax.erf(x * (1.0 / math.sqrt(2.0))))


class MLP(nn.Module):
  """Dense(mlp_ratio * width) -> exact (erf) GELU, as torch's nn.GELU() -> Dense(width)."""

  num_layers: int
  mlp_ratio: int = 4
  dropout: float = 0.0
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  dropout_bits: int = 8  # see DecoderLM
  weight_init: str = 'gpt'  # see INITS

  @nn.compact
  def __call__(self, x: Array, train: bool, example_ids: Array | None = None) -> Array:
    width = x.shape[-1]
    x = _dense(
      self.mlp_ratio * width,
      self.use_bias,
      self.dtype,
      'c_fc',
      weight_init=self.weight_init,
      axes=(EMBED, MLP_AXIS),
    )(x)
    x = gelu(x)
    stddev = _residual_stddev(self.num_layers)
    x = _dense(
      width, self.use_bias, self.dtype, 'c_proj', stddev, self.weight_init, axes=(MLP_AXIS, EMBED)
    )(x)
    return dropout_lib.Dropout(self.dropout, self.dropout_bits)(x, not train, example_ids)


class Block(nn.Module):
  """Pre-LayerNorm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

  num_heads: int
  num_layers: int
  mlp_ratio: int = 4
  dropout: float = 0.0
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  attention: str = 'auto'
  dropout_bits: int = 8

  # Positional arguments only: nn.remat marks ``train`` static by its position.
  @nn.compact
  def __call__(
    self,
    x: Array,
    train: bool,
    cache: dict[str, Array] | None = None,
    cache_index: Array | int | None = None,
    example_ids: Array | None = None,
  ) -> tuple[Array, dict[str, Array] | None]:
    attention = CausalSelfAttention(
      self.num_heads,
      self.num_layers,
      self.dropout,
      self.use_bias,
      self.dtype,
      self.attention,
      self.dropout_bits,
      name='attn',
    )
    y, cache = attention(
      _layer_norm(self.use_bias, self.dtype, 'ln_1')(x), train, cache, cache_index, example_ids
    )
    # The residual stream keeps the embeddings' float32 (bfloat16 branches promote when
    # added), as under torch autocast.
    x = x + y
    mlp = MLP(
      self.num_layers,
      self.mlp_ratio,
      self.dropout,
      self.use_bias,
      self.dtype,
      self.dropout_bits,
      name='mlp',
    )
    x = x + mlp(_layer_norm(self.use_bias, self.dtype, 'ln_2')(x), train, example_ids)
    return x, cache


# Activation checkpointing ("remat"): what a block keeps of its forward pass for the
# backward one, the rest recomputed there. 'none' keeps everything (fastest, most memory);
# 'full' keeps only the block's input (least memory, a second forward pass); 'dots' keeps
# the matmul outputs (the costly part to recompute), 'dots_no_batch' those without a
# batch axis (the weights' products, not attention's scores), as MaxText's policies do.
REMAT_POLICIES = ('none', 'full', 'dots', 'dots_no_batch')


def remat_policy(remat: bool | str) -> str:
  """The policy's name; a bool (the field's type before policies) is 'full' or 'none'."""
  if isinstance(remat, bool):
    return 'full' if remat else 'none'
  if remat not in REMAT_POLICIES:
    raise ValueError(f'remat must be one of {REMAT_POLICIES}, got {remat!r}')
  return remat


def rematted(block: type[nn.Module], remat: bool | str, train_argnum: int) -> type[nn.Module]:
  """`block` with `remat`'s policy; `train_argnum`: the position of its ``train``
  argument, counting self, which stays static (it switches dropout on and off)."""
  policy = remat_policy(remat)
  if policy == 'none':
    return block
  saveable = {
    'full': None,
    'dots': jax.checkpoint_policies.checkpoint_dots,
    'dots_no_batch': jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
  }[policy]
  return nn.remat(block, static_argnums=(train_argnum,), policy=saveable)


def check_fields(module: nn.Module, positive: tuple[str, ...]) -> None:
  """What every Transformer here checks when it is built, before anything is traced:
  positive sizes, heads that divide the width, a known attention, a dropout rate in [0, 1)
  and a supported mask width."""
  owner = type(module).__name__
  for name in positive:
    if getattr(module, name) <= 0:
      raise ValueError(f'{owner}: {name} must be positive, got {getattr(module, name)}')
  if module.width % module.num_heads:
    raise ValueError(
      f'{owner}: width ({module.width}) must be divisible by num_heads ({module.num_heads})'
    )
  if module.attention not in ATTENTION_IMPLS:
    raise ValueError(
      f'{owner}: attention must be one of {ATTENTION_IMPLS}, got {module.attention!r}'
    )
  if not 0.0 <= module.dropout < 1.0:
    raise ValueError(f'{owner}: dropout must be in [0, 1), got {module.dropout}')
  if module.dropout_bits not in dropout_lib.BITS:
    raise ValueError(
      f'{owner}: dropout_bits must be one of {dropout_lib.BITS}, got {module.dropout_bits!r}'
    )


class DecoderLM(nn.Module):
  """GPT decoder (nanoGPT): int tokens ``[B, T]`` -> float32 next-token logits ``[B, T, vocab]``.

  Without a cache, ``T <= block_size`` tokens sit at positions ``0..T-1``. With
  ``cache`` (from ``init_cache``) and ``cache_index`` (an int, possibly traced), they sit
  at ``cache_index..cache_index+T-1``: their keys and values are written into the cache
  there, each attends to the cache up to its own position, and the call returns
  ``(logits, new_cache)``. The caller keeps ``cache_index + T <= block_size`` (checked
  only when cache_index is a concrete value: a traced one is clamped by XLA).

  ``example_ids`` (int ``[B]``, with ``train=True``): each example's position in the
  global batch; dropout masks are then drawn per example, so a batch split over devices
  gets the masks it would get on one.

  Attributes:
    vocab_size: number of token ids.
    block_size: context length, the number of learned positions.
    num_layers: transformer blocks.
    num_heads: attention heads; must divide width.
    width: embedding size.
    mlp_ratio: hidden size of the MLP over width.
    dropout: rate on the embeddings, the attention output projection and the MLP
      output (as nanoGPT; not on the attention probabilities, so fused attention kernels
      stay usable). Active only with ``train=True``, from the 'dropout' rng collection.
    use_bias: biases in the dense layers and LayerNorms (nanoGPT's shakespeare_char
      config trains without).
    dtype: computation dtype (float32 or bfloat16). Parameters, LayerNorm statistics,
      the attention softmax, the residual stream and the logits stay float32.
    remat: which activations each block keeps for the backward pass, the rest recomputed
      (``REMAT_POLICIES``: 'none', 'full', 'dots', 'dots_no_batch'; True is 'full').
    attention: 'auto' | 'xla' | 'cudnn' | 'einsum' (see ``causal_attention``).
    dropout_bits: random bits per element of a dropout mask (``genjax.models.dropout``):
      8, the rate rounded to a multiple of 1/256 and the mask several times cheaper to
      draw on a CPU, or 32, the rate exact.
  """

  vocab_size: int
  block_size: int = 256
  num_layers: int = 6
  num_heads: int = 6
  width: int = 384
  mlp_ratio: int = 4
  dropout: float = 0.0
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  remat: bool | str = 'none'
  attention: str = 'auto'
  dropout_bits: int = 8

  def __post_init__(self) -> None:
    remat_policy(self.remat)
    check_fields(
      self, ('vocab_size', 'block_size', 'num_layers', 'num_heads', 'width', 'mlp_ratio')
    )
    super().__post_init__()

  @nn.nowrap
  def init_cache(self, batch_size: int, dtype: Dtype | None = None) -> Cache:
    """Zero keys and values for every layer; needs no parameters (a plain method)."""
    head_dim = self.width // self.num_heads
    shape = (batch_size, self.block_size, self.num_heads, head_dim)
    dtype = self.dtype if dtype is None else dtype
    return tuple(
      {'keys': jnp.zeros(shape, dtype), 'values': jnp.zeros(shape, dtype)}
      for _ in range(self.num_layers)
    )

  @nn.nowrap
  def _check_call(self, tokens: Array, cache: Cache | None, cache_index: Any) -> None:
    if tokens.ndim != 2 or not jnp.issubdtype(tokens.dtype, jnp.integer):
      raise ValueError(
        f'DecoderLM expects integer tokens of shape [batch, length], got '
        f'{tokens.dtype} {tuple(tokens.shape)}'
      )
    length = tokens.shape[1]
    if length > self.block_size:
      raise ValueError(
        f'{length} tokens exceed block_size={self.block_size}: crop the '
        f'prompt/context to its last {self.block_size} tokens'
      )
    if cache is None:
      if cache_index is not None:
        raise ValueError(
          'cache_index was given without a cache: pass cache=model.init_cache(batch_size) as well'
        )
      return
    if cache_index is None:
      raise ValueError('a cache needs a cache_index: the position of the first token')
    if len(cache) != self.num_layers:
      raise ValueError(
        f'cache has {len(cache)} layers, the model {self.num_layers}: build '
        f'it with model.init_cache(batch_size)'
      )
    expected = (tokens.shape[0], self.block_size)
    if tuple(cache[0]['keys'].shape[:2]) != expected:
      raise ValueError(
        f'cache keys start with shape {tuple(cache[0]["keys"].shape[:2])}, '
        f'expected [batch, block_size] = {expected}'
      )
    if isinstance(cache_index, int) and not 0 <= cache_index <= self.block_size - length:
      raise ValueError(
        f'cache_index {cache_index} + {length} tokens does not fit in block_size={self.block_size}'
      )

  @nn.compact
  def __call__(
    self,
    tokens: Array,
    *,
    train: bool = False,
    cache: Cache | None = None,
    cache_index: Array | int | None = None,
    example_ids: Array | None = None,
  ) -> Array | tuple[Array, Cache]:
    tokens = jnp.asarray(tokens)
    self._check_call(tokens, cache, cache_index)
    tokens_init = embedding_init(INIT_STDDEV, (VOCAB, EMBED))
    wte = nn.Embed(self.vocab_size, self.width, embedding_init=tokens_init, name='wte')
    positions_init = embedding_init(INIT_STDDEV, (POSITION, EMBED))
    wpe = nn.Embed(self.block_size, self.width, embedding_init=positions_init, name='wpe')
    positions = jnp.arange(tokens.shape[1])
    if cache is not None:
      positions = positions + cache_index
    x = wte(tokens) + wpe(positions)[None]
    x = dropout_lib.Dropout(self.dropout, self.dropout_bits)(x, not train, example_ids)

    block_cls = rematted(Block, self.remat, train_argnum=2)
    new_cache = []
    for i in range(self.num_layers):
      block = block_cls(
        self.num_heads,
        self.num_layers,
        self.mlp_ratio,
        self.dropout,
        self.use_bias,
        self.dtype,
        self.attention,
        self.dropout_bits,
        name=f'h_{i}',
      )
      x, layer_cache = block(
        x, train, None if cache is None else cache[i], cache_index, example_ids
      )
      new_cache.append(layer_cache)

    # Final norm and the tied-embedding logits in float32 whatever the computation dtype.
    x = _layer_norm(self.use_bias, jnp.float32, 'ln_f')(x)
    logits = _flat(wte.attend)(x.astype(jnp.float32))
    return logits if cache is None else (logits, tuple(new_cache))
