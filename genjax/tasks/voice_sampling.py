"""Sampling a four-voice stream with some tokens given: composing and harmonizing.

`sample_stream` fills in a stream of N tokens left to right: where `known` is set it keeps
the given token (the `<start>` step; for harmonizing, every soprano token), elsewhere it
samples from the decoder LM given everything before. One compiled program per
(batch, N): a key/value cache, and when the cache is full a slide that re-reads the last
half of the context and goes on, so a piece may be longer than the model's context.

The slides keep the windows the model trained on: every window it reads starts at a
step (a multiple of 4 tokens from the stream's start), as the training windows do
(`genjax.data.jsb_chorales.StepWindowSource`); that needs block_size % 8 == 0.

A causal model harmonizes without seeing the melody ahead of the current step (Coconet
resamples all voices for that); its alto, tenor and bass at step t follow the soprano up
to and including step t.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from genjax.models import DecoderLM
from genjax.models.decoding import sample_token


def sample_stream(
  model: DecoderLM,
  variables,
  forced: jax.Array,
  known: jax.Array,
  rng: jax.Array,
  *,
  banned: int | None = None,
  temperature: float = 1.0,
  top_k: int = 0,
  top_p: float = 1.0,
) -> jax.Array:
  """int32 [B, N]: `forced` [B, N] where `known` [B, N] (bool) is set, sampled elsewhere.

  known[:, 0] must be set (the first token starts the context). `banned`: a token never
  sampled (the `<start>` token, which only begins a piece).
  """
  batch, length = forced.shape
  context = model.block_size
  if context % 8:
    raise ValueError(f'block_size must be a multiple of 8 to slide by whole steps, got {context}')
  keep = context // 2 + 1  # tokens re-read at a slide: the window then starts at a step
  per_segment = context - keep + 1  # tokens fed between slides
  first = min(context, length - 1)  # tokens fed before the first slide
  segments = -(-(length - 1 - first) // per_segment) if length - 1 > first else 0
  pad = context  # room for the last segment's overrun; never returned
  tokens = jnp.pad(forced.astype(jnp.int32), ((0, 0), (0, pad)))
  known = jnp.pad(known.astype(bool), ((0, 0), (0, pad)), constant_values=True)

  def choose(tokens: jax.Array, logits: jax.Array, i) -> jax.Array:
    """Writes token i + 1: the given one, or one drawn from `logits` [B, vocab]."""
    if banned is not None:
      logits = logits.at[:, banned].set(-jnp.inf)
    drawn = sample_token(logits, jax.random.fold_in(rng, i), temperature, top_k, top_p)
    given = lax.dynamic_index_in_dim(tokens, i + 1, axis=1, keepdims=False)
    is_known = lax.dynamic_index_in_dim(known, i + 1, axis=1, keepdims=False)
    return lax.dynamic_update_index_in_dim(tokens, jnp.where(is_known, given, drawn), i + 1, 1)

  def feed(tokens: jax.Array, cache, i, slot):
    """Feeds token i at cache slot `slot`; returns the tokens with i + 1 chosen."""
    token = lax.dynamic_slice_in_dim(tokens, i, 1, axis=1)
    logits, cache = model.apply(variables, token, cache=cache, cache_index=slot)
    return choose(tokens, logits[:, 0], i), cache

  def opening(i, carry):
    return feed(*carry, i, i)

  tokens, _ = lax.fori_loop(0, first, opening, (tokens, model.init_cache(batch)))

  def segment(s, tokens):
    i0 = first + s * per_segment  # the token fed with the slide
    recent = lax.dynamic_slice_in_dim(tokens, i0 - keep + 1, keep, axis=1)
    logits, cache = model.apply(variables, recent, cache=model.init_cache(batch), cache_index=0)
    tokens = choose(tokens, logits[:, -1], i0)

    def body(k, carry):
      return feed(*carry, i0 + k, keep + k - 1)

    tokens, _ = lax.fori_loop(1, per_segment, body, (tokens, cache))
    return tokens

  tokens = lax.fori_loop(0, segments, segment, tokens)
  return tokens[:, :length]


# The model, the banned token and top_k shape the program; everything else is traced.
sample_stream_jit = jax.jit(sample_stream, static_argnames=('model', 'banned', 'top_k'))
