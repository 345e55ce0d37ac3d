"""Compiled autoregressive sampling from a ``DecoderLM``: key/value-cached and uncached.

``generate`` prefills a key/value cache with the prompt, then feeds one token per step
inside a ``lax.while_loop``; when the context fills ``block_size`` it re-prefills the
cache from the last ``block_size // 2`` tokens and goes on, so it generates any number of
tokens at the cost of one position per token (plus a half-block forward every
``block_size // 2`` tokens). ``generate_uncached`` is nanoGPT's loop: a full forward over
the last ``block_size`` tokens for every token; it is the baseline and the test oracle.

::

    tokens, lengths = generate_jit(model, variables, prompt, jax.random.key(0),
                                   max_new_tokens=500, temperature=0.8, top_k=200)

Both take the flax variables (``{'params': ...}``) and int prompts ``[B, P]``, and share
``filter_logits`` (temperature, top-k, top-p) and one key per step, ``fold_in(rng, step)``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import io_callback

if TYPE_CHECKING:
  from genjax.models.transformer import DecoderLM

Array = jnp.ndarray
OnToken = Callable[[int, np.ndarray], Any]


def _concrete(value: Any) -> float | None:
  """``value`` as a float, or None while it is traced (then it cannot be checked)."""
  try:
    return float(value)
  except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
    return None


def _check_sampling(temperature: Any, top_k: int, top_p: Any) -> None:
  if not isinstance(top_k, (int, np.integer)) or top_k < 0:
    raise ValueError(f'top_k must be an int >= 0 (0: no top-k filter), got {top_k!r}')
  temperature_value = _concrete(temperature)
  if temperature_value is not None and not temperature_value >= 0:
    raise ValueError(f'temperature must be >= 0 (0: greedy), got {temperature}')
  top_p_value = _concrete(top_p)
  if top_p_value is not None and not 0 < top_p_value <= 1:
    raise ValueError(f'top_p must be in (0, 1] (1: no nucleus filter), got {top_p}')


def _check_prompt(model: DecoderLM, prompt: Array, max_new_tokens: int) -> None:
  if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
    raise ValueError(f'max_new_tokens must be an int >= 1, got {max_new_tokens!r}')
  if prompt.ndim != 2 or not jnp.issubdtype(prompt.dtype, jnp.integer):
    raise ValueError(f'prompt must be integer tokens of shape [batch, length], got '
                     f'{prompt.dtype} {tuple(prompt.shape)}')
  if prompt.shape[1] < 1:
    raise ValueError('prompt must hold at least one token')
  if prompt.shape[1] > model.block_size:
    raise ValueError(f'prompt of {prompt.shape[1]} tokens exceeds block_size='
                     f'{model.block_size}: crop it to its last {model.block_size} tokens')


def _top_p_filter(logits: Array, top_p: Array | float) -> Array:
  """Keeps the fewest most probable tokens whose probabilities sum to >= top_p."""
  sorted_logits = jnp.flip(jnp.sort(logits, axis=-1), axis=-1)
  probs = jax.nn.softmax(sorted_logits, axis=-1)
  mass_before = jnp.cumsum(probs, axis=-1) - probs
  # A token is in the nucleus while the more probable ones hold < top_p; the top token
  # (mass_before 0) always is.
  kept = jnp.sum(mass_before < top_p, axis=-1, keepdims=True)
  threshold = jnp.take_along_axis(sorted_logits, jnp.maximum(kept, 1) - 1, axis=-1)
  return jnp.where(logits < threshold, -jnp.inf, logits)


def filter_logits(logits: Array, temperature: Array | float = 1.0, top_k: int = 0,
                  top_p: Array | float = 1.0) -> Array:
  """Sampling logits ``[..., vocab]``: excluded tokens get -inf.

  temperature 0 keeps only the argmax (so sampling is greedy); otherwise the logits are
  divided by temperature, then ``top_k > 0`` (static) keeps the k largest (ties with the
  k-th all kept) and ``top_p < 1`` the nucleus of the result. temperature and top_p may be
  traced values.
  """
  logits = jnp.asarray(logits, jnp.float32)
  temperature = jnp.asarray(temperature, jnp.float32)
  greedy = temperature == 0
  filtered = logits / jnp.where(greedy, 1.0, temperature)
  vocab = logits.shape[-1]
  if 0 < top_k < vocab:
    kth_largest = lax.top_k(filtered, top_k)[0][..., -1:]
    filtered = jnp.where(filtered < kth_largest, -jnp.inf, filtered)
  if _concrete(top_p) != 1.0:
    # A traced top_p of 1 must keep everything, even tokens that rounding of the
    # cumulative sum would push past 1.
    filtered = jnp.where(jnp.asarray(top_p) >= 1, filtered, _top_p_filter(filtered, top_p))
  is_argmax = jnp.arange(vocab) == jnp.argmax(logits, axis=-1, keepdims=True)
  return jnp.where(greedy, jnp.where(is_argmax, logits, -jnp.inf), filtered)


def sample_token(logits: Array, key: Array, temperature: Array | float = 1.0,
                 top_k: int = 0, top_p: Array | float = 1.0) -> Array:
  """One int32 token per row of ``logits [B, vocab]``, from ``filter_logits``."""
  filtered = filter_logits(logits, temperature, top_k, top_p)
  return jax.random.categorical(key, filtered, axis=-1).astype(jnp.int32)


def _emit(on_token: OnToken) -> Callable[[Array, Array], None]:
  def host(step: np.ndarray, tokens: np.ndarray) -> None:
    on_token(int(step), np.asarray(tokens))
  return host


def _stream(on_token: OnToken | None, step: Array, tokens: Array) -> None:
  if on_token is not None:
    # ordered: the host sees the tokens in generation order.
    io_callback(_emit(on_token), None, step, tokens, ordered=True)


def _last_logits(logits: Array, index: Array | int) -> Array:
  """``logits[:, index]`` for a possibly traced index."""
  return lax.dynamic_index_in_dim(logits, index, axis=1, keepdims=False)


def generate(model: DecoderLM, params: Any, prompt: Array, rng: Array, *,
             max_new_tokens: int, prompt_length: Array | int | None = None,
             temperature: Array | float = 1.0, top_k: int = 0,
             top_p: Array | float = 1.0, eos_id: int | None = None,
             on_token: OnToken | None = None) -> tuple[Array, Array]:
  """Samples ``max_new_tokens`` after ``prompt`` with a key/value cache.

  Args:
    model: the DecoderLM (static under jit).
    params: its flax variables, ``{'params': ...}``.
    prompt: int ``[B, P]``, ``P <= block_size``, possibly right-padded.
    rng: PRNG key; step i samples with ``fold_in(rng, i)``.
    max_new_tokens: tokens to generate (static).
    prompt_length: how many of the P columns are real (1..P, may be traced; default P),
      so prompts padded to a few bucket lengths share one compiled program.
    temperature: 0 is greedy; else the logits are divided by it (may be traced).
    top_k: > 0 keeps only the k most likely tokens (static).
    top_p: < 1 samples from the nucleus of that probability mass (may be traced).
    eos_id: a row that emits it keeps emitting it; the loop ends once every row has.
    on_token: host function ``on_token(step, tokens [B])`` called with each step's tokens
      as they are produced (steps after every row has ended are not streamed). Under
      ``generate_jit`` it is a static argument: pass the same function object to reuse
      the compiled program (a new lambda each call recompiles).

  Returns:
    ``(tokens int32 [B, max_new_tokens], lengths int32 [B])``: lengths count the tokens up
    to and including the first eos_id (max_new_tokens for a row without one).
  """
  prompt = jnp.asarray(prompt)
  _check_prompt(model, prompt, max_new_tokens)
  _check_sampling(temperature, top_k, top_p)
  batch, padded_length = prompt.shape
  if prompt_length is None:
    prompt_length = padded_length
  length_value = _concrete(prompt_length)
  if length_value is not None and not 1 <= length_value <= padded_length:
    raise ValueError(f'prompt_length must be in [1, {padded_length}] (the prompt columns), '
                     f'got {prompt_length}')
  prompt_length = jnp.asarray(prompt_length, jnp.int32)
  block_size = model.block_size
  window = max(block_size // 2, 1)

  def sample(logits: Array, step: Array) -> Array:
    return sample_token(logits, jax.random.fold_in(rng, step), temperature, top_k, top_p)

  def forward(tokens: Array, cache: Any, index: Array | int) -> tuple[Array, Any]:
    return model.apply(params, tokens, cache=cache, cache_index=index)

  # History: the prompt, then each new token at prompt_length + step (over any padding).
  history = jnp.zeros((batch, padded_length + max_new_tokens), jnp.int32)
  history = history.at[:, :padded_length].set(prompt.astype(jnp.int32))
  # Causal: padding after the real tokens leaves their logits alone; its keys in the
  # cache are overwritten by the new tokens before any query can see them.
  logits, cache = forward(prompt, model.init_cache(batch), 0)

  def record(state: dict[str, Any], token: Array) -> dict[str, Any]:
    step = state['step']
    if eos_id is not None:
      token = jnp.where(state['done'], eos_id, token)
      newly_done = (token == eos_id) & ~state['done']
      state['lengths'] = jnp.where(newly_done, step + 1, state['lengths'])
      state['done'] = state['done'] | newly_done
    _stream(on_token, step, token)
    state['tokens'] = state['tokens'].at[:, step].set(token)
    state['history'] = lax.dynamic_update_slice(state['history'], token[:, None],
                                                (0, prompt_length + step))
    state['token'] = token
    state['step'] = step + 1
    return state

  def advance(token: Array, cache: Any, position: Array, context: Array,
              history: Array, may_slide: bool = True) -> tuple[Array, Any, Array]:
    """Next logits after ``token``: one cached position, or a slide when the cache is full."""
    def step(_: None) -> tuple[Array, Any, Array]:
      logits, new_cache = forward(token[:, None], cache, position)
      return logits[:, 0], new_cache, position + 1

    def slide(_: None) -> tuple[Array, Any, Array]:
      # Slots past the window keep stale keys; the mask hides them until overwritten.
      recent = lax.dynamic_slice_in_dim(history, context - window, window, axis=1)
      logits, new_cache = forward(recent, cache, 0)
      return logits[:, -1], new_cache, jnp.asarray(window, jnp.int32)

    if not may_slide or padded_length + max_new_tokens <= block_size:  # no slide to compile
      return step(None)
    return lax.cond(position >= block_size, slide, step, None)

  fill = 0 if eos_id is None else eos_id
  state = {
      'step': jnp.asarray(0, jnp.int32),
      'token': jnp.zeros((batch,), jnp.int32),
      'tokens': jnp.full((batch, max_new_tokens), fill, jnp.int32),
      'history': history,
      'done': jnp.zeros((batch,), bool),
      'lengths': jnp.full((batch,), max_new_tokens, jnp.int32),
      'cache': cache,
      'position': prompt_length,
  }
  state = record(state, sample(_last_logits(logits, prompt_length - 1), 0))

  def cond(state: dict[str, Any]) -> Array:
    return (state['step'] < max_new_tokens) & ~jnp.all(state['done'])

  def body(state: dict[str, Any], may_slide: bool = True) -> dict[str, Any]:
    state = dict(state)
    context = prompt_length + state['step']
    logits, state['cache'], state['position'] = advance(
        state['token'], state['cache'], state['position'], context, state['history'],
        may_slide)
    return record(state, sample(logits, state['step']))

  def segment(state: dict[str, Any]) -> dict[str, Any]:
    """One token that may slide the window, then cached tokens until the cache is full.

    The inner loop has no `lax.cond`: a conditional's branches copy the cache in and
    out on every token, which on a CPU cost a small model about as much as its layers."""
    state = body(state)
    return lax.while_loop(lambda s: cond(s) & (s['position'] < block_size),
                          lambda s: body(s, may_slide=False), state)

  state = lax.while_loop(cond, segment, state)
  return state['tokens'], state['lengths']


def generate_uncached(model: DecoderLM, params: Any, prompt: Array, rng: Array, *,
                      max_new_tokens: int, temperature: Array | float = 1.0, top_k: int = 0,
                      top_p: Array | float = 1.0) -> Array:
  """nanoGPT's sampling loop: each token from a full forward over the last block_size.

  The forward always runs on a fixed ``[B, block_size]`` window of the history, starting
  at ``max(0, length - block_size)``: a shorter context sits at positions 0..length-1
  with zeros after it, which causal attention keeps out of its logits. Same sampling
  (and keys) as ``generate``; returns int32 tokens ``[B, max_new_tokens]``.
  """
  prompt = jnp.asarray(prompt)
  _check_prompt(model, prompt, max_new_tokens)
  _check_sampling(temperature, top_k, top_p)
  batch, prompt_length = prompt.shape
  block_size = model.block_size
  # At least block_size columns, so the window slice always fits.
  history = jnp.zeros((batch, max(prompt_length + max_new_tokens, block_size)), jnp.int32)
  history = history.at[:, :prompt_length].set(prompt.astype(jnp.int32))

  def body(step: Array, history: Array) -> Array:
    length = prompt_length + step
    start = jnp.maximum(length - block_size, 0)
    window = lax.dynamic_slice_in_dim(history, start, block_size, axis=1)
    logits = model.apply(params, window)
    last = _last_logits(logits, jnp.minimum(length, block_size) - 1)
    token = sample_token(last, jax.random.fold_in(rng, step), temperature, top_k, top_p)
    return lax.dynamic_update_slice(history, token[:, None], (0, length))

  history = lax.fori_loop(0, max_new_tokens, body, history)
  return history[:, prompt_length:prompt_length + max_new_tokens]


# Flax modules are hashable dataclasses and functions hash by identity, so both are
# static arguments; temperature, top_p and prompt_length stay traced.
generate_jit = jax.jit(
    generate, static_argnames=('model', 'max_new_tokens', 'top_k', 'eos_id', 'on_token'))
generate_uncached_jit = jax.jit(
    generate_uncached, static_argnames=('model', 'max_new_tokens', 'top_k'))
