"""Compiled autoregressive sampling from any ``Decoder``: key/value-cached and uncached.

A ``Decoder`` is what a model family hands to the sampling loops: the number of positions
its cache holds (``context``), an empty cache, one cached ``step`` over a few tokens, and
a cache-free ``forward``. ``LMDecoder`` adapts a ``DecoderLM``; an encoder-decoder or a
music model brings its own, and greedy, temperature, top-k and top-p sampling, EOS, streaming
and the sliding window below then come with it.

``generate`` prefills the decoder's cache with the prompt, then feeds one token per step
inside a ``lax.while_loop``; when the context fills ``decoder.context`` it re-prefills the
cache from the last ``context // 2`` tokens and goes on, so it generates any number of
tokens at the cost of one position per token (plus a half-context step every
``context // 2`` tokens). ``generate_uncached`` is nanoGPT's loop: a full ``forward`` over
the last ``context`` tokens for every token; it is the baseline and the test oracle.

::

    tokens, lengths = generate_jit(LMDecoder(model), variables, prompt, jax.random.key(0),
                                   max_new_tokens=500, temperature=0.8, top_k=200)

Both take the decoder's variables (for ``LMDecoder`` the flax ``{'params': ...}``) and int
prompts ``[B, P]``, and share ``filter_logits`` (temperature, top-k, top-p) and one key per
step, ``fold_in(rng, step)``. A bare ``DecoderLM`` in place of the decoder is wrapped in
``LMDecoder``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import io_callback

from genjax.models.transformer import DecoderLM

Array = jnp.ndarray
OnToken = Callable[[int, np.ndarray], Any]


@runtime_checkable
class Decoder(Protocol):
  """An autoregressive model as the sampling loops see it.

  Implementations are hashable (a frozen dataclass of flax modules and Python values):
  the jitted loops take the decoder as a static argument, so everything traced (the
  parameters, and e.g. an encoded source for an encoder-decoder) goes in ``variables``.

  ``context``: the positions the cache holds. ``init_cache(batch)``: an empty cache
  pytree. ``step(variables, tokens [B, T], cache, index)``: writes the tokens at positions
  ``index..index+T-1`` (``index`` may be traced; the caller keeps ``index + T <= context``)
  and returns ``(logits [B, T, vocab], cache)``. It must be causal, each position seeing
  the cache up to itself only: ``generate`` pads prompts on the right and slides the
  window back to 0, leaving stale entries past the new tokens.
  ``forward(variables, tokens [B, T])``: the same logits for tokens at positions 0..T-1,
  without a cache. It may be ``step`` over a fresh cache, but a cache-free pass makes
  ``generate_uncached`` an oracle that does not share the code it checks.
  """

  @property
  def context(self) -> int: ...

  def init_cache(self, batch: int) -> Any: ...

  def step(
    self, variables: Any, tokens: Array, cache: Any, index: Array | int
  ) -> tuple[Array, Any]: ...

  def forward(self, variables: Any, tokens: Array) -> Array: ...


@dataclasses.dataclass(frozen=True)
class LMDecoder:
  """A ``DecoderLM`` as a ``Decoder``; its variables are the flax ``{'params': ...}``."""

  model: DecoderLM

  @property
  def context(self) -> int:
    return self.model.block_size

  def init_cache(self, batch: int) -> Any:
    return self.model.init_cache(batch)

  def step(
    self, variables: Any, tokens: Array, cache: Any, index: Array | int
  ) -> tuple[Array, Any]:
    return self.model.apply(variables, tokens, cache=cache, cache_index=index)

  def forward(self, variables: Any, tokens: Array) -> Array:
    return self.model.apply(variables, tokens)


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


def as_decoder(decoder: Decoder | DecoderLM) -> Decoder:
  """``decoder`` itself, or ``LMDecoder(decoder)`` for a bare ``DecoderLM``.

  So ``generate(model, variables, ...)`` keeps working for the decoder-only model; any
  other family passes its ``Decoder``.
  """
  if isinstance(decoder, DecoderLM):
    return LMDecoder(decoder)
  # Anything else would fail deep inside tracing.
  if not isinstance(decoder, Decoder):
    raise TypeError(
      f'expected a Decoder (context, init_cache, step, forward) or a '
      f'DecoderLM, got {type(decoder).__name__}'
    )
  return decoder


def _check_prompt(context: int, prompt: Array, max_new_tokens: int) -> None:
  if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
    raise ValueError(f'max_new_tokens must be an int >= 1, got {max_new_tokens!r}')
  if prompt.ndim != 2 or not jnp.issubdtype(prompt.dtype, jnp.integer):
    raise ValueError(
      f'prompt must be integer tokens of shape [batch, length], got '
      f'{prompt.dtype} {tuple(prompt.shape)}'
    )
  if prompt.shape[1] < 1:
    raise ValueError('prompt must hold at least one token')
  if prompt.shape[1] > context:
    raise ValueError(
      f'prompt of {prompt.shape[1]} tokens exceeds the context of {context} '
      f'positions: crop it to its last {context} tokens'
    )


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


def filter_logits(
  logits: Array, temperature: Array | float = 1.0, top_k: int = 0, top_p: Array | float = 1.0
) -> Array:
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


def sample_token(
  logits: Array,
  key: Array,
  temperature: Array | float = 1.0,
  top_k: int = 0,
  top_p: Array | float = 1.0,
) -> Array:
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


def generate(
  decoder: Decoder | DecoderLM,
  variables: Any,
  prompt: Array,
  rng: Array,
  *,
  max_new_tokens: int,
  prompt_length: Array | int | None = None,
  temperature: Array | float = 1.0,
  top_k: int = 0,
  top_p: Array | float = 1.0,
  eos_id: int | None = None,
  on_token: OnToken | None = None,
) -> tuple[Array, Array]:
  """Samples ``max_new_tokens`` after ``prompt`` with a key/value cache.

  Args:
    decoder: the model's ``Decoder``, or a ``DecoderLM`` (static under jit).
    variables: what its ``step`` takes (traced), e.g. the flax ``{'params': ...}``.
    prompt: int ``[B, P]``, ``P <= decoder.context``, possibly right-padded.
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
  decoder = as_decoder(decoder)
  prompt = jnp.asarray(prompt)
  _check_prompt(decoder.context, prompt, max_new_tokens)
  _check_sampling(temperature, top_k, top_p)
  batch, padded_length = prompt.shape
  if prompt_length is None:
    prompt_length = padded_length
  length_value = _concrete(prompt_length)
  if length_value is not None and not 1 <= length_value <= padded_length:
    raise ValueError(
      f'prompt_length must be in [1, {padded_length}] (the prompt columns), got {prompt_length}'
    )
  prompt_length = jnp.asarray(prompt_length, jnp.int32)
  context = decoder.context
  window = max(context // 2, 1)

  def sample(logits: Array, step: Array) -> Array:
    return sample_token(logits, jax.random.fold_in(rng, step), temperature, top_k, top_p)

  # History: the prompt, then each new token at prompt_length + step (over any padding).
  history = jnp.zeros((batch, padded_length + max_new_tokens), jnp.int32)
  history = history.at[:, :padded_length].set(prompt.astype(jnp.int32))
  # Causal: padding after the real tokens leaves their logits alone; its cache entries
  # are overwritten by the new tokens before any position can see them.
  logits, cache = decoder.step(variables, prompt, decoder.init_cache(batch), 0)

  def record(state: dict[str, Any], token: Array) -> dict[str, Any]:
    step = state['step']
    if eos_id is not None:
      token = jnp.where(state['done'], eos_id, token)
      newly_done = (token == eos_id) & ~state['done']
      state['lengths'] = jnp.where(newly_done, step + 1, state['lengths'])
      state['done'] = state['done'] | newly_done
    _stream(on_token, step, token)
    state['tokens'] = state['tokens'].at[:, step].set(token)
    state['history'] = lax.dynamic_update_slice(
      state['history'], token[:, None], (0, prompt_length + step)
    )
    state['token'] = token
    state['step'] = step + 1
    return state

  def advance(
    token: Array, cache: Any, position: Array, length: Array, history: Array, may_slide: bool = True
  ) -> tuple[Array, Any, Array]:
    """Next logits after ``token``: one cached position, or a slide when the cache is full."""

    def step(_: None) -> tuple[Array, Any, Array]:
      logits, new_cache = decoder.step(variables, token[:, None], cache, position)
      return logits[:, 0], new_cache, position + 1

    def slide(_: None) -> tuple[Array, Any, Array]:
      # Slots past the window keep stale entries, unseen (causal) until overwritten.
      recent = lax.dynamic_slice_in_dim(history, length - window, window, axis=1)
      logits, new_cache = decoder.step(variables, recent, cache, 0)
      return logits[:, -1], new_cache, jnp.asarray(window, jnp.int32)

    if not may_slide or padded_length + max_new_tokens <= context:  # no slide to compile
      return step(None)
    return lax.cond(position >= context, slide, step, None)

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
    length = prompt_length + state['step']
    logits, state['cache'], state['position'] = advance(
      state['token'], state['cache'], state['position'], length, state['history'], may_slide
    )
    return record(state, sample(logits, state['step']))

  def segment(state: dict[str, Any]) -> dict[str, Any]:
    """One token that may slide the window, then cached tokens until the cache is full.

    The inner loop has no `lax.cond`: a conditional's branches copy the cache in and
    out on every token, which on a CPU cost a small model about as much as its layers."""
    state = body(state)
    return lax.while_loop(
      lambda s: cond(s) & (s['position'] < context), lambda s: body(s, may_slide=False), state
    )

  state = lax.while_loop(cond, segment, state)
  return state['tokens'], state['lengths']


def generate_uncached(
  decoder: Decoder | DecoderLM,
  variables: Any,
  prompt: Array,
  rng: Array,
  *,
  max_new_tokens: int,
  temperature: Array | float = 1.0,
  top_k: int = 0,
  top_p: Array | float = 1.0,
) -> Array:
  """nanoGPT's sampling loop: each token from a full ``forward`` over the last context.

  The forward always runs on a fixed ``[B, context]`` window of the history, starting
  at ``max(0, length - context)``: a shorter history sits at positions 0..length-1
  with zeros after it, which causal attention keeps out of its logits. Same sampling
  (and keys) as ``generate``; returns int32 tokens ``[B, max_new_tokens]``.
  """
  decoder = as_decoder(decoder)
  prompt = jnp.asarray(prompt)
  _check_prompt(decoder.context, prompt, max_new_tokens)
  _check_sampling(temperature, top_k, top_p)
  batch, prompt_length = prompt.shape
  context = decoder.context
  # At least context columns, so the window slice always fits.
  history = jnp.zeros((batch, max(prompt_length + max_new_tokens, context)), jnp.int32)
  history = history.at[:, :prompt_length].set(prompt.astype(jnp.int32))

  def body(step: Array, history: Array) -> Array:
    length = prompt_length + step
    start = jnp.maximum(length - context, 0)
    window = lax.dynamic_slice_in_dim(history, start, context, axis=1)
    logits = decoder.forward(variables, window)
    last = _last_logits(logits, jnp.minimum(length, context) - 1)
    token = sample_token(last, jax.random.fold_in(rng, step), temperature, top_k, top_p)
    return lax.dynamic_update_slice(history, token[:, None], (0, length))

  history = lax.fori_loop(0, max_new_tokens, body, history)
  return history[:, prompt_length : prompt_length + max_new_tokens]


# Decoders are hashable (equal decoders of equal models share a compiled program) and
# functions hash by identity, so both are static arguments; temperature, top_p and
# prompt_length stay traced.
generate_jit = jax.jit(
  generate, static_argnames=('decoder', 'max_new_tokens', 'top_k', 'eos_id', 'on_token')
)
generate_uncached_jit = jax.jit(
  generate_uncached, static_argnames=('decoder', 'max_new_tokens', 'top_k')
)
