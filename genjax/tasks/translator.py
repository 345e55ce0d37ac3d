"""Texts in, texts out: an encoder-decoder's batched, compiled decoding, for any text pairs.

`Translator.translate(variables, sources)` prepares each source as training did (Moses,
lowercasing), encodes it with the run's tokenizer, pads a batch to a fixed number of rows
and a length rounded up to `length_multiple` (so a handful of shapes compile, once
each), runs beam search (or greedy: beam 1, alpha 0) and decodes the best hypothesis up to
its EOS. Each output may be `max_length_a * source_length + max_length_b` tokens at most,
as fairseq bounds it, and never more than the model's positions.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data import text_pairs
from genjax.data.sequences import round_up
from genjax.models.beam_search import beam_search
from genjax.models.seq2seq import EncoderDecoder, Seq2SeqDecoder

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Decoding:
  """How outputs are searched: beam 1 and alpha 0 are greedy decoding."""

  beam_size: int = 1
  alpha: float = 0.0
  max_length_a: float = 1.5  # an output may have a * source tokens + b
  max_length_b: int = 10


class Translator:
  """An EncoderDecoder with its tokenizer and text preparation, batched and compiled."""

  def __init__(
    self,
    model: EncoderDecoder,
    tokenizer,
    prepare: text_pairs.Preparation,
    batch_size: int = 64,
    length_multiple: int = 8,
  ):
    self.model, self.tokenizer, self.prepare = model, tokenizer, prepare
    self.batch_size, self.length_multiple = batch_size, length_multiple

  @functools.partial(jax.jit, static_argnums=(0, 3, 4, 5))
  def _search(self, variables, source, max_new_tokens, beam_size, alpha, limits):
    decoder = Seq2SeqDecoder(self.model, length=max_new_tokens + 1)
    encoded = decoder.encoded(variables, source)
    bos = jnp.full((source.shape[0],), self.tokenizer.bos_id, jnp.int32)
    tokens, scores = beam_search(
      decoder,
      encoded,
      bos,
      beam_size=beam_size,
      max_new_tokens=max_new_tokens,
      eos_id=self.tokenizer.eos_id,
      alpha=alpha,
      max_lengths=limits,
    )
    return tokens[:, 0], scores[:, 0]

  def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
    """Prepared and tokenized sources (with EOS), truncated to the model's positions."""
    sources = text_pairs.encode_sources(self.tokenizer, [self.prepare.source(t) for t in texts])
    limit = self.model.max_length
    for i, ids in enumerate(sources):
      if len(ids) > limit:
        _log.warning(
          'Input %d has %d tokens, more than the model\'s %d positions: truncated.',
          i + 1,
          len(ids),
          limit,
        )
        sources[i] = np.append(ids[: limit - 1], self.tokenizer.eos_id)
    return sources

  def decode_ids(
    self, variables: Any, sources: Sequence[np.ndarray], decoding: Decoding
  ) -> list[np.ndarray]:
    """The best output ids (up to, without, EOS) of each source's ids."""
    order = np.argsort([len(s) for s in sources], kind='stable')  # similar lengths together
    found: dict[int, np.ndarray] = {}
    cap = self.model.max_length - 1
    for start in range(0, len(order), self.batch_size):
      chunk = order[start : start + self.batch_size]
      length = round_up(max(len(sources[i]) for i in chunk), self.length_multiple)
      batch = np.zeros((self.batch_size, length), np.int32)
      lengths = np.ones(self.batch_size, np.int32)
      for row, i in enumerate(chunk):
        batch[row, : len(sources[i])] = sources[i]
        lengths[row] = len(sources[i])
      max_new = min(cap, int(decoding.max_length_a * length + decoding.max_length_b))
      limits = np.minimum(
        (decoding.max_length_a * lengths + decoding.max_length_b).astype(np.int32), max_new
      )
      tokens, _ = self._search(
        variables, batch, max_new, decoding.beam_size, float(decoding.alpha), limits
      )
      tokens = np.asarray(tokens)
      for row, i in enumerate(chunk):
        ids = tokens[row]
        end = np.flatnonzero(ids == self.tokenizer.eos_id)
        found[int(i)] = ids[: end[0]] if end.size else ids
    return [found[i] for i in range(len(sources))]

  def outputs(self, variables: Any, sources: Sequence[np.ndarray], decoding: Decoding) -> list[str]:
    """Decoded outputs of sources already tokenized (with EOS), e.g. a split's arrays."""
    return [self.tokenizer.decode(ids) for ids in self.decode_ids(variables, sources, decoding)]

  def translate(
    self, variables: Any, texts: Sequence[str], decoding: Decoding = Decoding()
  ) -> list[str]:
    """Each raw text's output as the tokenizer decodes it (Moses tokens if prepared so)."""
    if not texts:
      return []
    return self.outputs(variables, self.encode(texts), decoding)

  def detokenize(self, outputs: Sequence[str]) -> list[str]:
    return [self.prepare.detokenize_target(o) for o in outputs]


def split_sources(arrays: dict[str, np.ndarray], n: int | None = None) -> list[np.ndarray]:
  """The source ids of a split's padded arrays (its first n rows), without the padding."""
  source, mask = arrays['source'][:n], arrays['source_mask'][:n]
  return [row[keep] for row, keep in zip(source, mask)]
