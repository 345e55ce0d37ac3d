"""Text in, text out: prompts through the tokenizer and the compiled, cached `generate`.

Prompts are right-padded to a few bucket lengths (powers of two up to the context), and
the streaming callback is one object for the sampler's lifetime, so an interactive
session compiles a handful of programs once and then reuses them for every prompt.
"""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np
from absl import logging

from genjax.config import ConfigError
from genjax.evaluation import code_metrics
from genjax.models import decoding

MIN_BUCKET = 8


class PromptError(ConfigError):
  """A prompt the model cannot take (empty, or not encodable)."""


def bucket_length(n: int, block_size: int) -> int:
  """The padded prompt length: the next power of two >= n (at least 8), capped."""
  size = MIN_BUCKET
  while size < n:
    size *= 2
  return min(size, block_size)


class Stream:
  """The host callback `generate` calls with each new token; prints text as it grows.

  It decodes the whole sample so far and emits the new suffix: BPE pieces and byte
  tokens only make sense in context. A trailing U+FFFD (half of a multi-byte character)
  is held back until the next token completes it. `start` takes anything with
  `decode(ids)` and `eos_id` (the token that ends the stream, not shown): a tokenizer, or
  a family's own rendering (a chat ends a reply at its end-of-turn token).
  """

  def __init__(self):
    self.tokenizer, self.emit, self.ids, self.shown = None, None, [], 0

  def start(self, tokenizer, emit: Callable[[str], None]) -> None:
    self.tokenizer, self.emit, self.ids, self.shown = tokenizer, emit, [], 0

  def __call__(self, step, tokens) -> None:
    del step
    if self.emit is None:
      return
    token = int(np.asarray(tokens)[0])
    if token == self.tokenizer.eos_id:
      self.emit = None  # the sample ended; later steps only pad
      return
    self.ids.append(token)
    text = self.tokenizer.decode(np.asarray(self.ids, np.int32)).rstrip('\ufffd')
    if len(text) > self.shown:
      self.emit(text[self.shown :])
      self.shown = len(text)


class TextSampler:
  """Generates text from a `DecoderLM` and its tokenizer."""

  def __init__(self, model, tokenizer):
    self.model, self.tokenizer = model, tokenizer
    self.decoder = decoding.LMDecoder(model)
    self._stream = Stream()

  def encode_prompt(self, prompt: str) -> np.ndarray:
    if not prompt:
      raise PromptError(
        'The prompt is empty; give at least one character, e.g. --prompt="\\n" (a new line).'
      )
    ids = np.asarray(self.tokenizer.encode(prompt), np.int32)  # TokenizerError: say which chars
    if len(ids) == 0:
      raise PromptError(f'The prompt {prompt!r} encodes to no tokens.')
    context = self.decoder.context
    if len(ids) > context:
      logging.warning(
        'The prompt is %d tokens; the model sees the last %d (its context).', len(ids), context
      )
      ids = ids[-context:]
    return ids

  def sample(
    self,
    params,
    prompt: str,
    rng,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    num_samples: int = 1,
    on_text: Callable[[str], None] | None = None,
  ) -> list[str]:
    """`num_samples` continuations of `prompt` (without it); `on_text` streams sample 0."""
    return self._generate(
      params, prompt, rng, max_new_tokens, temperature, top_k, top_p, num_samples, on_text
    )[0]

  def _generate(
    self, params, prompt, rng, max_new_tokens, temperature, top_k, top_p, num_samples, on_text
  ):
    """(texts, whether each sample ended at end-of-text rather than at the length limit)."""
    ids = self.encode_prompt(prompt)
    batch = np.zeros((num_samples, bucket_length(len(ids), self.decoder.context)), np.int32)
    batch[:, : len(ids)] = ids
    if on_text is not None:
      self._stream.start(self.tokenizer, on_text)
    tokens, lengths = decoding.generate_jit(
      self.decoder,
      params,
      batch,
      rng,
      max_new_tokens=max_new_tokens,
      prompt_length=np.int32(len(ids)),
      temperature=np.float32(temperature),
      top_k=min(int(top_k), self.model.vocab_size),
      top_p=np.float32(top_p),
      eos_id=self.tokenizer.eos_id,
      on_token=self._stream if on_text is not None else None,
    )
    tokens, lengths = jax.device_get((tokens, lengths))
    texts, ended = [], []
    for row, n in zip(tokens, lengths):
      row = row[:n]
      ended.append(bool(len(row)) and row[-1] == self.tokenizer.eos_id)
      texts.append(self.tokenizer.decode(row[:-1] if ended[-1] else row))
    return texts, ended

  def parse_rate(self, params, val_texts, rng, eval_config) -> dict[str, float]:
    """`code_metrics.parse_rate` of completions of held-out function headers."""
    headers = code_metrics.function_headers(
      val_texts, eval_config.parse_samples, seed=eval_config.parse_seed
    )
    max_new = eval_config.parse_max_new_tokens
    keys = iter(jax.random.split(rng, len(headers)))

    def complete(header: str) -> tuple[str, bool]:
      texts, ended = self._generate(
        params,
        header,
        next(keys),
        max_new,
        eval_config.parse_temperature,
        eval_config.parse_top_k,
        1.0,
        1,
        None,
      )
      return texts[0], ended[0]

    return code_metrics.parse_rate(headers, complete)
