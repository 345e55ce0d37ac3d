"""A Transformer over piano-roll frames whose output models each frame's notes jointly.

`PianoRollTransformer` reads the frames before time t (a causal Transformer of the shared
pre-LN blocks, each frame embedded by a dense layer from its 88 keys) and gives the
distribution of frame t's set of notes. How that distribution is built is what separates
the published figures on the polyphonic benchmarks:

- 'nade' (default): a NADE over the 88 keys, lowest first, as in RNN-NADE
  (Boulanger-Lewandowski et al. 2012): key k is on with probability
  sigmoid(b_k + V_k . sigmoid(c + W_{<k} v_{<k})), where the Transformer's state at t
  gives the biases b and c and W, V are shared. Keys depend on the keys below them, so
  a chord's notes are modelled together. Training and scoring are one parallel pass
  (a cumulative sum over keys); sampling walks the keys in order.
- 'bernoulli': 88 independent Bernoullis given the past (the baseline the literature's
  figures near 8 nats per step use).

The log-likelihood of a frame is exact in both, summed over the 88 keys of the piano
(MIDI 21 to 108), as the benchmark tables measure it.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from genjax.models import dropout as dropout_lib
from genjax.models.transformer import INIT_STDDEV, Block, check_fields

Array = jnp.ndarray
NUM_KEYS = 88  # piano keys, MIDI 21 (A0) to 108 (C8)
OUTPUTS = ('nade', 'bernoulli')


class FrameNADE(nn.Module):
  """A NADE over one frame's keys, its biases given by a context vector per frame.

  `__call__(context [..., D], frames [..., K])` -> logits [..., K]: the logit of key k
  given context and the keys below k of `frames` (teacher forcing). `sample(context
  [B, D], rng)` -> bool [B, K], key by key. With W, V and the bias layers all zero the
  model is uniform: every key is on with probability 1/2.
  """

  num_keys: int = NUM_KEYS
  hidden: int = 128

  def setup(self) -> None:
    init = nn.initializers.normal(stddev=INIT_STDDEV)
    self.visible_bias = nn.Dense(self.num_keys, kernel_init=init, name='visible_bias')
    self.hidden_bias = nn.Dense(self.hidden, kernel_init=init, name='hidden_bias')
    # W: how key j being on moves the hidden units of the keys above it; V: read-out.
    self.w = self.param('w', init, (self.num_keys, self.hidden))
    self.v = self.param('v', init, (self.hidden, self.num_keys))

  def __call__(self, context: Array, frames: Array) -> Array:
    b, c = self.visible_bias(context), self.hidden_bias(context)
    contributions = frames.astype(jnp.float32)[..., :, None] * self.w  # [..., K, H]
    # Key k's hidden pre-activation sees the keys strictly below it: an exclusive cumsum.
    below = jnp.cumsum(contributions, axis=-2) - contributions
    hidden = jax.nn.sigmoid(c[..., None, :] + below)
    return b + jnp.einsum('...kh,hk->...k', hidden, self.v)

  def sample(self, context: Array, rng: Array, temperature: float = 1.0) -> Array:
    """bool [B, K]: each key drawn after the ones below it; temperature scales logits."""
    b, c = self.visible_bias(context), self.hidden_bias(context)
    keys = jax.random.split(rng, self.num_keys)

    def next_key(pre_activation, k):
      logit = b[:, k] + jax.nn.sigmoid(pre_activation) @ self.v[:, k]
      on = jax.random.bernoulli(keys[k], jax.nn.sigmoid(logit / temperature))
      return pre_activation + on[:, None] * self.w[k], on

    _, on = lax.scan(next_key, c, jnp.arange(self.num_keys))
    return on.T


class PianoRollTransformer(nn.Module):
  """Frames bool/float [B, T, 88] -> logits [B, T, 88] of frame t given frames < t.

  Frame t's logits come from the Transformer's state after frames 0..t-1 (frame 0's from
  a start position that has seen nothing) and, for 'nade', frame t's own keys below each
  key (teacher forcing). `sample(variables, ...)` lives in genjax.tasks.piano_roll.

  Attributes:
    block_size: the most frames a sequence may hold (learned positions).
    num_layers, num_heads, width, mlp_ratio, dropout: the Transformer's, as DecoderLM's.
    output: 'nade' | 'bernoulli' (see the module docstring).
    nade_hidden: the NADE's hidden units per key.
  """

  block_size: int = 160
  num_layers: int = 4
  num_heads: int = 4
  width: int = 256
  mlp_ratio: int = 4
  dropout: float = 0.0
  output: str = 'nade'
  nade_hidden: int = 128
  num_keys: int = NUM_KEYS
  attention: str = 'auto'
  dropout_bits: int = 8
  use_bias: bool = True

  def __post_init__(self) -> None:
    check_fields(self, ('block_size', 'num_layers', 'num_heads', 'width', 'mlp_ratio'))
    if self.output not in OUTPUTS:
      raise ValueError(
        f'PianoRollTransformer: output must be one of {OUTPUTS}, got {self.output!r}'
      )
    if self.nade_hidden <= 0:
      raise ValueError(
        f'PianoRollTransformer: nade_hidden must be positive, got {self.nade_hidden}'
      )
    super().__post_init__()

  def setup(self) -> None:
    init = nn.initializers.normal(stddev=INIT_STDDEV)
    self.embed = nn.Dense(self.width, kernel_init=init, name='embed')
    self.positions = nn.Embed(self.block_size, self.width, embedding_init=init, name='wpe')
    self.blocks = [
      Block(
        self.num_heads,
        self.num_layers,
        self.mlp_ratio,
        self.dropout,
        self.use_bias,
        jnp.float32,
        self.attention,
        self.dropout_bits,
        name=f'h_{i}',
      )
      for i in range(self.num_layers)
    ]
    self.ln_f = nn.LayerNorm(epsilon=1e-5, name='ln_f')
    self.embed_dropout = dropout_lib.Dropout(self.dropout, self.dropout_bits)
    if self.output == 'nade':
      self.head = FrameNADE(self.num_keys, self.nade_hidden, name='nade')
    else:
      self.head = nn.Dense(self.num_keys, kernel_init=init, name='bernoulli')

  def context(self, frames: Array, train: bool = False, example_ids: Array | None = None) -> Array:
    """[B, T, D]: the state from which frame t is predicted (it has seen frames < t)."""
    length = frames.shape[1]
    if length > self.block_size:
      raise ValueError(
        f'{length} frames exceed block_size={self.block_size}: split the piece, or train '
        'with a larger model.block_size'
      )
    # Frame t reads frame t - 1; the first reads silence at position 0, which only the
    # start ever sees there.
    previous = jnp.pad(frames.astype(jnp.float32), ((0, 0), (1, 0), (0, 0)))[:, :-1]
    x = self.embed(previous) + self.positions(jnp.arange(length))[None]
    x = self.embed_dropout(x, not train, example_ids)
    for block in self.blocks:
      x, _ = block(x, train, None, None, example_ids)
    return self.ln_f(x)

  def __call__(
    self, frames: Array, *, train: bool = False, example_ids: Array | None = None
  ) -> Array:
    context = self.context(frames, train, example_ids)
    if self.output == 'nade':
      return self.head(context, frames)
    return self.head(context)

  def sample_frame(self, context: Array, rng: Array, temperature: float = 1.0) -> Array:
    """bool [B, 88]: one frame drawn given its context vectors [B, D]."""
    if self.output == 'nade':
      return self.head.sample(context, rng, temperature)
    return jax.random.bernoulli(rng, jax.nn.sigmoid(self.head(context) / temperature))


def frame_log_likelihood(logits: Array, frames: Array) -> Array:
  """[..., T]: log p(frame) summed over its keys, from the logits of each key."""
  on = frames.astype(jnp.float32)
  # log sigmoid(l) for keys on, log sigmoid(-l) for keys off.
  return jnp.sum(jax.nn.log_sigmoid(jnp.where(on > 0, logits, -logits)), axis=-1)


def sample_frames(
  model: PianoRollTransformer,
  variables: Any,
  rng: Array,
  num: int,
  length: int,
  temperature: float = 1.0,
  prefix: Array | None = None,
) -> Array:
  """bool [num, length]: pieces drawn frame by frame (each frame a fresh pass over the
  frames so far, at a fixed [num, length] shape: compiled once). `prefix` (bool
  [num, P, 88]) fixes the first P frames."""
  frames = jnp.zeros((num, length, model.num_keys), bool)
  start = 0
  if prefix is not None:
    frames = frames.at[:, : prefix.shape[1]].set(prefix.astype(bool))
    start = prefix.shape[1]

  def body(t, frames):
    context = model.apply(variables, frames, method=model.context)
    at_t = lax.dynamic_index_in_dim(context, t, axis=1, keepdims=False)
    drawn = model.apply(
      variables, at_t, jax.random.fold_in(rng, t), temperature, method=model.sample_frame
    )
    return lax.dynamic_update_index_in_dim(frames, drawn, t, axis=1)

  return lax.fori_loop(start, length, body, frames)
