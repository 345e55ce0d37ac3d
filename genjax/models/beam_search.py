"""Beam search over any ``genjax.models.decoding.Decoder``: batch x beam in one compiled loop.

::

    decoder = Seq2SeqDecoder(model, length=max_len + 1)
    tokens, scores = beam_search_jit(decoder, decoder.encoded(variables, source), bos,
                                     beam_size=5, alpha=0.6, eos_id=EOS, max_lengths=limit)
    best = tokens[:, 0]          # [B, max_len]: the highest-scoring hypothesis of each row

Each example keeps ``beam_size`` live hypotheses. At every step the ``2 * beam_size``
best extensions of all of them are taken: those among the first ``beam_size`` that end
with ``eos_id`` (or reach the example's maximum length) join its finished hypotheses,
scored by their log-probability over GNMT's length penalty ``((5 + length) / 6) ** alpha``
(Wu et al. 2016); the best ``beam_size`` of the others stay live. An example is done once
no live hypothesis can still beat its worst finished one (a log-probability only falls as
it grows, and the penalty is at its largest at the maximum length), and the loop, a
``lax.while_loop``, ends when every example is done. Beam 1 with ``alpha=0`` is greedy decoding.

The decoder's cache holds ``batch * beam_size`` rows and is reordered (gathered) to follow
the surviving hypotheses at every step. Variables that hold one row per example (an
encoded source) are repeated over the beams with the decoder's ``repeat_batch`` when it
has one; a decoder-only model's variables are the same for every row.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from genjax.models.decoding import Decoder

Array = jnp.ndarray
NEG_INF = -1.0e9  # "impossible", finite so that sums and comparisons stay well defined


def length_penalty(length: Array, alpha: float) -> Array:
  """GNMT's ``((5 + length) / 6) ** alpha``; 1 for every length when alpha is 0."""
  return ((5.0 + length.astype(jnp.float32)) / 6.0) ** alpha


def _gather(x: Array, indices: Array) -> Array:
  """``x[b, indices[b, j]]`` for ``x`` [B, K, ...] and ``indices`` [B, J]."""
  return jax.vmap(lambda row, index: row[index])(x, indices)


def beam_search(
  decoder: Decoder,
  variables: Any,
  bos: Array,
  *,
  beam_size: int,
  max_new_tokens: int,
  eos_id: int,
  alpha: float = 0.6,
  max_lengths: Array | None = None,
) -> tuple[Array, Array]:
  """The ``beam_size`` best continuations of each row's ``bos`` token.

  Args:
    decoder: a ``Decoder`` whose ``context`` is at least ``max_new_tokens + 1``.
    variables: its variables for the ``B`` rows (repeated over beams here).
    bos: int ``[B]``, the first token of every row (the decoder sees it at position 0).
    beam_size: hypotheses kept per row (static).
    max_new_tokens: the longest output, ``eos_id`` included (static).
    eos_id: the token that ends a hypothesis.
    alpha: the length penalty's exponent; 0 ranks by log-probability alone.
    max_lengths: int ``[B]``, optional per-row limits ``<= max_new_tokens`` (e.g. a
      multiple of the source length); a hypothesis that reaches its row's limit finishes.

  Returns:
    ``(tokens int32 [B, beam_size, max_new_tokens], scores float32 [B, beam_size])``,
    best first. A hypothesis's tokens end with ``eos_id`` (unless it stopped at its limit)
    and are ``eos_id`` after it; a score of ``NEG_INF`` marks an empty slot.
  """
  bos = jnp.asarray(bos, jnp.int32)
  batch, k, length = bos.shape[0], beam_size, max_new_tokens
  if decoder.context < length + 1:
    raise ValueError(
      f'the decoder holds {decoder.context} positions; beam search of {length} tokens '
      f'after the first needs {length + 1}'
    )
  limits = jnp.full((batch,), length, jnp.int32)
  if max_lengths is not None:
    limits = jnp.clip(jnp.asarray(max_lengths, jnp.int32), 1, length)
  repeat = getattr(decoder, 'repeat_batch', None)
  beam_variables = repeat(variables, k) if repeat is not None else variables

  # Position 0 of every hypothesis is bos; only the first beam is live at the start, so
  # the first step's 2k candidates are distinct extensions of it.
  sequences = jnp.zeros((batch, k, length + 1), jnp.int32).at[:, :, 0].set(bos[:, None])
  state = {
    'i': jnp.int32(0),
    'live': sequences,
    'live_logp': jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1), jnp.float32), (batch, 1)),
    'finished': sequences,
    'finished_score': jnp.full((batch, k), NEG_INF, jnp.float32),
    'cache': decoder.init_cache(batch * k),
  }
  max_penalty = length_penalty(limits, alpha)

  def done(s) -> Array:
    """[B]: no live hypothesis can overtake the worst finished one, or the limit is reached."""
    best_possible = s['live_logp'][:, 0] / max_penalty
    settled = s['finished_score'][:, -1] > best_possible
    return settled | (s['i'] >= limits)

  def keep_going(s) -> Array:
    return (s['i'] < length) & ~jnp.all(done(s))

  def step(s):
    i = s['i']
    tokens = s['live'][:, :, i].reshape(batch * k, 1)
    logits, cache = decoder.step(beam_variables, tokens, s['cache'], i)
    logp = jax.nn.log_softmax(logits[:, 0].astype(jnp.float32)).reshape(batch, k, -1)
    vocab = logp.shape[-1]
    candidates = (s['live_logp'][:, :, None] + logp).reshape(batch, k * vocab)
    top_logp, top_index = lax.top_k(candidates, 2 * k)
    parent, token = top_index // vocab, top_index % vocab
    grown = _gather(s['live'], parent).at[:, :, i + 1].set(token)
    new_length = i + 1  # tokens after bos, this one included
    ends = (token == eos_id) | (new_length >= limits)[:, None]
    # As fairseq: only the k best candidates may finish (so one beam is greedy), and rows
    # already done add nothing, their finished list being final.
    finishing = ends & (jnp.arange(2 * k) < k)[None] & ~done(s)[:, None]
    ends_score = jnp.where(finishing, top_logp / length_penalty(new_length, alpha), NEG_INF)
    ends_score = jnp.where(top_logp <= NEG_INF / 2, NEG_INF, ends_score)
    pool_score = jnp.concatenate([s['finished_score'], ends_score], axis=1)
    pool = jnp.concatenate([s['finished'], grown], axis=1)
    finished_score, pick = lax.top_k(pool_score, k)
    # The live beams: the best k extensions that did not end.
    live_logp, pick_live = lax.top_k(jnp.where(ends, NEG_INF, top_logp), k)
    rows = (jnp.arange(batch)[:, None] * k + _gather(parent, pick_live)).reshape(-1)
    return {
      'i': i + 1,
      'live': _gather(grown, pick_live),
      'live_logp': live_logp,
      'finished': _gather(pool, pick),
      'finished_score': finished_score,
      'cache': jax.tree.map(lambda c: c[rows], cache),
    }

  state = lax.while_loop(keep_going, step, state)
  tokens = state['finished'][:, :, 1:]
  # After a hypothesis's eos: eos, so the rows read as the samplers' outputs do.
  after_eos = jnp.cumsum(tokens == eos_id, axis=-1) - (tokens == eos_id) > 0
  return jnp.where(after_eos, eos_id, tokens), state['finished_score']


beam_search_jit = jax.jit(
  beam_search, static_argnames=('decoder', 'beam_size', 'max_new_tokens', 'eos_id', 'alpha')
)


@functools.partial(jax.jit, static_argnames=('decoder', 'max_new_tokens', 'eos_id'))
def greedy(decoder: Decoder, variables: Any, bos: Array, *, max_new_tokens: int, eos_id: int):
  """Greedy decoding as beam search of one hypothesis without a length penalty."""
  tokens, scores = beam_search(
    decoder, variables, bos, beam_size=1, max_new_tokens=max_new_tokens, eos_id=eos_id, alpha=0.0
  )
  return tokens[:, 0], scores[:, 0]
