"""The language-model family: `DecoderLM` trained on next-token prediction.

Batches hold `tokens` [B, block_size + 1] windows (inputs `[:, :-1]`, targets `[:, 1:]`).
The loss is the mean cross-entropy in nats per token. Dropout masks are drawn per
example from its position in the global batch (`DecoderLM(example_ids=...)`), so 'pmap',
'jit' and one device give the same numbers with dropout on. Text generation lives in
`lm_sampling.TextSampler`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from genjax.config import ConfigError
from genjax.models import DecoderLM
from genjax.tasks import lm_sampling
from genjax.tasks.base import Task

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def make_model(model_config: ml_collections.ConfigDict, vocab_size: int) -> DecoderLM:
  fields = model_config.to_dict()
  dtype = fields.pop('dtype', 'float32')
  if dtype not in DTYPES:
    raise ConfigError(f'config.model.dtype={dtype!r} is not one of {tuple(DTYPES)}.')
  return DecoderLM(vocab_size=vocab_size, dtype=DTYPES[dtype], **fields)


def token_losses(model: DecoderLM, params, tokens: jax.Array, *, train: bool = False,
                 rng: jax.Array | None = None, index: jax.Array | None = None) -> jax.Array:
  """Cross-entropy [B, T] of each next token given the ones before it."""
  inputs, targets = tokens[:, :-1], tokens[:, 1:]
  if train and model.dropout > 0:
    # Masks per example from its global position: the same on any number of devices.
    logits = model.apply(params, inputs, train=True, rngs={'dropout': rng}, example_ids=index)
  else:
    logits = model.apply(params, inputs, train=False)
  return optax.softmax_cross_entropy_with_integer_labels(logits, targets)


def build(config: ml_collections.ConfigDict, tokenizer) -> Task:
  model = make_model(config.model, tokenizer.vocab_size)
  if config.data.block_size != model.block_size:
    raise ConfigError(f'config.data.block_size={config.data.block_size} differs from '
                      f'config.model.block_size={model.block_size}: windows must fit the model.')
  sampler = lm_sampling.TextSampler(model, tokenizer)

  def init(rng, batch):
    return model.init(rng, jnp.asarray(batch['tokens'])[:, :-1]), {}

  def loss(params, batch, rng):
    losses = token_losses(model, params, batch['tokens'], train=True, rng=rng,
                          index=batch['index'])
    return jnp.mean(losses), {}

  def eval_metrics(params, batch, rng):
    del rng
    return {'loss': jnp.mean(token_losses(model, params, batch['tokens']), axis=-1)}

  window_losses = jax.jit(lambda params, tokens: jnp.mean(token_losses(model, params, tokens),
                                                          axis=-1))

  def validation_loss(params, windows: np.ndarray, batch_size: int) -> float:
    """Mean loss over all windows (every window has the same number of tokens)."""
    total = 0.0
    for start in range(0, len(windows), batch_size):
      chunk = windows[start:start + batch_size]
      pad = batch_size - len(chunk)  # one shape: compiled once
      padded = np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)]) if pad else chunk
      total += float(jnp.sum(window_losses(params, padded)[:len(chunk)]))
    return total / len(windows)

  def evaluate(params, data, rng, eval_config=config.eval):
    windows = data.test['tokens']
    loss_nats = validation_loss(params, windows, eval_config.batch_size)
    results = {'loss': loss_nats, 'perplexity': math.exp(loss_nats),
               'val_tokens': int(windows.shape[0] * (windows.shape[1] - 1))}
    if tokenizer.kind == 'char':
      results['bits_per_char'] = loss_nats / math.log(2)
    else:  # nats over the characters those tokens spell
      chars = sum(len(tokenizer.decode(w[1:])) for w in windows)
      results['bits_per_char'] = loss_nats * results['val_tokens'] / chars / math.log(2)
    if eval_config.get('parse_samples', 0):
      results.update(sampler.parse_rate(params, data.val_texts, rng, eval_config))
    return results

  def view_sample(params, arrays, rng, num):
    del arrays, num
    s = config.sample
    return sampler.sample(params, s.prompt, rng, max_new_tokens=s.max_new_tokens,
                          temperature=s.temperature, top_k=s.top_k, top_p=s.top_p)[0]

  return Task(name='lm', model=model, init=init, loss=loss, eval_metrics=eval_metrics,
              evaluate=evaluate, views={'sample': view_sample}, default_view='sample',
              sampler=sampler)
