"""The chat family: the language model (`genjax.tasks.lm`) on conversations formatted as
turns (`genjax.data.chat_format`), with what a chat model is judged by.

Model, loss, training and validation loss are the lm family's. This family adds:

- `evaluate`: lm's report (loss, perplexity over every held-out window), then
  `kn3_perplexity`, an interpolated modified Kneser-Ney 3-gram model
  (`genjax.evaluation.kneser_ney`) fit on the training stream and scored on the same
  held-out tokens; and distinct-1/2 (`genjax.evaluation.distinct`) of replies sampled for
  held-out turns (`eval.reply_samples`) beside the human replies' values, with their
  mean length in words (distinct-n falls as texts grow) and a few examples.
- views: 'sample' (default) a conversation from its start, rendered 'A: ...' / 'B: ...';
  'reply' the next turn after `history` and the user's `prompt`, which stops at
  `<eot>` (`launch.chat` talks through it; it takes `on_text` to stream).
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.data.chat_format import normalize
from genjax.evaluation import distinct
from genjax.evaluation.kneser_ney import KneserNey
from genjax.tasks import lm
from genjax.tasks.base import Task, View
from genjax.tasks.chat_sampling import ChatSampler
from genjax.writers import outputs

DEFAULT_LINE = 'Hi! How are you?'  # what the 'reply' view answers without a prompt
NUM_EXAMPLES = 3  # replies shown beside the human ones in the report


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  lm.add_config_fields(c)
  config_lib.add_fields(
    c,
    {
      'eval.kn_order': 3,  # the n-gram baseline's order (interpolated modified Kneser-Ney)
      # Held-out turns whose replies launch.evaluate samples for distinct-n (0 = none), and
      # how; the context before each is block_size - reply_max_new_tokens tokens.
      'eval.reply_samples': 200,
      'eval.reply_max_new_tokens': 64,
      'eval.reply_temperature': 0.8,
      'eval.reply_top_k': 200,
      'eval.reply_top_p': 1.0,
    },
  )
  c.sample.prompt = ''  # the written samples start a conversation from nothing
  c.sample.max_new_tokens = 200


def held_out_turns(chat, stream: np.ndarray, context_length: int, num: int):
  """(contexts int32 [K, context_length], human replies): K <= num turns evenly spaced
  through `stream`, each context the tokens before the turn's text (ending with its
  speaker token), each reply the turn's text."""
  spans = chat.turn_spans(stream)
  spans = spans[spans[:, 0] >= context_length - 1]
  if not len(spans) or num < 1:
    return np.zeros((0, context_length), np.int32), []
  spans = spans[np.unique(np.linspace(0, len(spans) - 1, num).round().astype(np.int64))]
  contexts = np.stack([stream[s - context_length + 1 : s + 1] for s, _ in spans])
  human = [normalize(chat.tokenizer.decode(stream[s + 1 : e].astype(np.int32))) for s, e in spans]
  return contexts.astype(np.int32), human


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  base = lm.build(config, spec, runs)
  sampler = ChatSampler(base.model, spec.tokenizer('tokens'))
  chat = sampler.format

  def reply_diversity(params, val: np.ndarray, rng, eval_config) -> dict:
    context_length = base.model.block_size - eval_config.reply_max_new_tokens
    if context_length < 2:
      raise ConfigError(
        f'config.eval.reply_max_new_tokens={eval_config.reply_max_new_tokens} leaves no '
        f'context in block_size={base.model.block_size}: lower it.'
      )
    contexts, human = held_out_turns(chat, val, context_length, eval_config.reply_samples)
    if not human:
      return {}
    replies, ended = sampler.replies(
      params,
      contexts,
      rng,
      eval_config.batch_size,
      max_new_tokens=eval_config.reply_max_new_tokens,
      temperature=eval_config.reply_temperature,
      top_k=eval_config.reply_top_k,
      top_p=eval_config.reply_top_p,
    )
    words = lambda texts: float(np.mean([len(distinct.words(t)) for t in texts]))
    examples = []
    for context, said, reply in list(zip(contexts, human, replies))[:NUM_EXAMPLES]:
      turns = chat.parse(context)[-1]  # ends with the reply's speaker token: an open turn
      before = turns[-2][1] if len(turns) >= 2 else ''  # '' where the conversation starts
      examples.append({'before': before, 'human': said, 'model': reply})
    return {
      'distinct_1': distinct.distinct_n(replies, 1),
      'distinct_2': distinct.distinct_n(replies, 2),
      'human_distinct_1': distinct.distinct_n(human, 1),
      'human_distinct_2': distinct.distinct_n(human, 2),
      'reply_words': words(replies),
      'human_reply_words': words(human),
      'replies': len(replies),
      'replies_ended': float(np.mean(ended)),  # share that ended at <eot>, not at the limit
      'reply_examples': examples,
    }

  def evaluate(params, data, rng, eval_config=config.eval):
    results = base.evaluate(params, data, rng, eval_config)
    windows, val = data.test['tokens'], np.asarray(data.extras['val_tokens'])
    # The tokens the windows predict: val[1 : n * block_size + 1], each after those before.
    scored = val[: windows.shape[0] * (windows.shape[1] - 1) + 1]
    order = int(eval_config.kn_order)
    kn = KneserNey.fit(data.extras['train_tokens'], base.model.vocab_size, order=order)
    results[f'kn{order}_perplexity'] = kn.perplexity(scored)
    if eval_config.reply_samples:
      results.update(reply_diversity(params, val, rng, eval_config))
    return results

  def view_sample(
    params,
    arrays,
    rng,
    num,
    *,
    prompt=config.sample.prompt,
    max_new_tokens=config.sample.max_new_tokens,
    temperature=config.sample.temperature,
    top_k=config.sample.top_k,
    top_p=config.sample.top_p,
  ):
    """A conversation from its start; `prompt` is speaker A's first words (may be empty)."""
    del arrays, num
    return outputs.Text(
      sampler.conversation(
        params,
        prompt,
        rng,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
      )
    )

  def view_reply(
    params,
    arrays,
    rng,
    num,
    *,
    prompt=DEFAULT_LINE,
    history=(),
    max_new_tokens=config.eval.reply_max_new_tokens,
    temperature=config.sample.temperature,
    top_k=config.sample.top_k,
    top_p=config.sample.top_p,
    on_text=None,
  ):
    """The bot's reply to the user's `prompt` after `history` (earlier turns, oldest
    first, the last one the bot's); `on_text` streams it."""
    del arrays, num
    reply = sampler.reply(
      params,
      list(history),
      prompt,
      rng,
      max_new_tokens=max_new_tokens,
      temperature=temperature,
      top_k=top_k,
      top_p=top_p,
      on_text=on_text,
    )
    return outputs.Text(reply, streamed=on_text is not None)

  sampling = ('max_new_tokens', 'temperature', 'top_k', 'top_p')
  views = {
    'sample': View(view_sample, options=('prompt', *sampling)),
    # Not 'on_text' among its options: launch.sample prints a reply whole (its streaming
    # would print the prompt first, as for a continuation); launch.chat streams it.
    'reply': View(view_reply, options=('prompt', 'history', *sampling)),
  }
  return dataclasses.replace(
    base, name='chat', evaluate=evaluate, views=views, default_view='sample'
  )
