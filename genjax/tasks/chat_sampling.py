"""Replies and conversations from a `DecoderLM` trained on turn-formatted chats.

A reply is generated after the conversation so far (`history` + the user's line, as
turns) and the bot's speaker token; it stops at `<eot>`, and the speaker tokens and
`</s>` are banned while it is generated (`BannedTokens`), so a reply can never run on
into the user's next turn. When the conversation no longer fits the context, the oldest
turns are dropped (whole turns); a user line longer than the context keeps its most
recent part, with a warning.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from genjax.data.chat_format import ChatFormat, normalize
from genjax.models import decoding
from genjax.tasks import lm_sampling
from genjax.tasks.lm_sampling import PromptError

USER, BOT = 0, 1  # speaker indices: the user opens the conversation as speaker 1


@dataclasses.dataclass(frozen=True)
class BannedTokens:
  """A `decoding.Decoder` whose logits exclude `banned` ids: sampling never picks them
  (whatever the temperature, top-k or top-p), nor does greedy decoding."""

  decoder: Any
  banned: tuple[int, ...]

  @property
  def context(self) -> int:
    return self.decoder.context

  def init_cache(self, batch: int) -> Any:
    return self.decoder.init_cache(batch)

  def _ban(self, logits):
    if not self.banned:
      return logits
    return logits.at[..., jnp.asarray(self.banned)].set(-jnp.inf)

  def step(self, variables, tokens, cache, index):
    logits, cache = self.decoder.step(variables, tokens, cache, index)
    return self._ban(logits), cache

  def forward(self, variables, tokens):
    return self._ban(self.decoder.forward(variables, tokens))


@dataclasses.dataclass(frozen=True)
class _Rendering:
  """What `lm_sampling.Stream` decodes with: ids -> text, and the id that ends the stream."""

  decode: Callable[[np.ndarray], str]
  eos_id: int


def _speakers(num_turns: int) -> list[int]:
  """Speakers of a history that ends with the user's turn, counted back from the end."""
  return [USER if (num_turns - 1 - i) % 2 == 0 else BOT for i in range(num_turns)]


class ChatSampler:
  """Replies (the next turn) and whole conversations from a chat model's parameters."""

  def __init__(self, model, tokenizer):
    self.model, self.tokenizer = model, tokenizer
    self.format = ChatFormat(tokenizer)
    self.context = model.block_size
    lm = decoding.LMDecoder(model)
    never = tuple(i for i in (tokenizer.bos_id, 0) if i is not None)  # <s>, <unk>: not in text
    self.reply_decoder = BannedTokens(lm, (*self.format.speaker_ids, self.format.eos_id, *never))
    self.free_decoder = BannedTokens(lm, never)
    self._stream = lm_sampling.Stream()  # one object: the compiled loop is reused

  def reply_prompt(self, history: Sequence[str], line: str, max_new_tokens: int) -> np.ndarray:
    """int32 ids: the latest turns that fit, then the bot's speaker token.

    The prompt keeps `max(context - max_new_tokens, context // 2)` tokens at most, so a
    short reply is generated without sliding the window. A conversation that fits
    entirely opens with `</s>`, as conversations do in training.
    """
    budget = max(self.context - max_new_tokens, self.context // 2)
    texts = [*history, line]
    turns = self.format.turns(texts, first_speaker=_speakers(len(texts))[0])
    bot = np.array([self.format.speaker_ids[BOT]], np.int32)
    last = turns[-1]
    if len(last) + 1 > budget:
      logging.warning(
        'The message is %d tokens; the model sees its last %d (its context is %d).',
        len(last) - 2,
        budget - 3,
        self.context,
      )
      last = np.concatenate([last[:1], last[len(last) - (budget - 2) : -1], last[-1:]])
    kept, used = [last], len(last) + 1
    for turn in reversed(turns[:-1]):
      if used + len(turn) > budget:
        break
      kept.insert(0, turn)
      used += len(turn)
    if len(kept) < len(turns):  # said once: a long chat would say it at every turn
      logging.log_first_n(
        logging.INFO,
        'The conversation outgrew the context: the model sees only its latest turns.',
        1,
      )
    opening = [np.array([self.format.eos_id], np.int32)] if len(kept) == len(turns) else []
    if opening and used + 1 > budget:
      opening = []
    return np.concatenate([*opening, *kept, bot]).astype(np.int32)

  def _generate(self, decoder, params, prompts, rng, eos_id, options, length=None, stream=None):
    """(tokens, lengths) of `generate_jit` after prompts int [B, P], `length` (default P)
    of whose columns are real; `stream` gets the tokens of row 0 as they come."""
    return jax.device_get(
      decoding.generate_jit(
        decoder,
        params,
        prompts,
        rng,
        max_new_tokens=int(options['max_new_tokens']),
        prompt_length=np.int32(prompts.shape[1] if length is None else length),
        temperature=np.float32(options['temperature']),
        top_k=min(int(options['top_k']), self.model.vocab_size),
        top_p=np.float32(options['top_p']),
        eos_id=eos_id,
        on_token=stream,
      )
    )

  def _reply_text(self, tokens: np.ndarray, length: int) -> tuple[str, bool]:
    row = tokens[:length]
    ended = bool(len(row)) and row[-1] == self.format.eot_id
    return normalize(self.tokenizer.decode(row[:-1] if ended else row)), ended

  def reply(
    self,
    params,
    history: Sequence[str],
    line: str,
    rng,
    *,
    max_new_tokens: int,
    temperature: float = 0.8,
    top_k: int = 0,
    top_p: float = 1.0,
    on_text: Callable[[str], None] | None = None,
  ) -> str:
    """The bot's next turn after `history` (the earlier turns, oldest first, taking turns,
    the last one the bot's) and the user's `line`; `on_text` gets it as it is generated."""
    if not normalize(line):
      raise PromptError(
        'The message is empty: give something to reply to (launch.sample --mode=reply '
        '--prompt="...").'
      )
    ids = self.reply_prompt(history, line, max_new_tokens)
    # Right-padded to a few bucket lengths: one compiled program per bucket.
    padded = np.zeros((1, lm_sampling.bucket_length(len(ids), self.context)), np.int32)
    padded[0, : len(ids)] = ids
    if on_text is not None:
      self._stream.start(_Rendering(self.tokenizer.decode, self.format.eot_id), on_text)
    options = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p)
    tokens, lengths = self._generate(
      self.reply_decoder,
      params,
      padded,
      rng,
      self.format.eot_id,
      options,
      length=len(ids),
      stream=self._stream if on_text is not None else None,
    )
    return self._reply_text(tokens[0], int(lengths[0]))[0]

  def replies(
    self, params, contexts: np.ndarray, rng, batch_size: int, **options
  ) -> tuple[list[str], list[bool]]:
    """Replies to contexts int [N, P] (each ending with a speaker token), in batches of
    `batch_size` rows of one shape; (texts, whether each ended at `<eot>`)."""
    texts, ended = [], []
    for b, start in enumerate(range(0, len(contexts), batch_size)):
      chunk = contexts[start : start + batch_size]
      pad = batch_size - len(chunk)  # the last batch repeats a row: one compiled shape
      rows = np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)]) if pad else chunk
      tokens, lengths = self._generate(
        self.reply_decoder,
        params,
        rows.astype(np.int32),
        jax.random.fold_in(rng, b),
        self.format.eot_id,
        options,
      )
      for i in range(len(chunk)):
        text, done = self._reply_text(tokens[i], int(lengths[i]))
        texts.append(text)
        ended.append(done)
    return texts, ended

  def conversation(self, params, opening: str, rng, **options) -> str:
    """A conversation sampled from its start (speaker A's first words `opening`, which
    may be empty), rendered 'A: ...' / 'B: ...', until it ends or max_new_tokens."""
    ids = [self.format.eos_id, self.format.speaker_ids[USER]]
    opening = normalize(opening)
    if opening:
      ids += self.tokenizer.encode(opening).tolist()
    ids = np.asarray(ids[-self.context :], np.int32)[None]
    tokens, lengths = self._generate(
      self.free_decoder, params, ids, rng, self.format.eos_id, options
    )
    return self.format.render(np.concatenate([ids[0], tokens[0][: int(lengths[0])]]))
