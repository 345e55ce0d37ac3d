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

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.models import DecoderLM
from genjax.tasks import lm_sampling
from genjax.tasks.base import Task, View
from genjax.writers import outputs

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
SEPARATOR = '\n' + '-' * 40 + '\n'  # after each of several samples


def make_model(model_config: ml_collections.ConfigDict, vocab_size: int) -> DecoderLM:
  fields = model_config.to_dict()
  dtype = fields.pop('dtype', 'float32')
  if dtype not in DTYPES:
    raise ConfigError(f'config.model.dtype={dtype!r} is not one of {tuple(DTYPES)}.')
  try:
    return DecoderLM(vocab_size=vocab_size, dtype=DTYPES[dtype], **fields)
  except ValueError as e:  # a size or a choice that cannot work, named by the model
    raise ConfigError(f'config.model: {e}.') from e


def token_losses(
  model: DecoderLM,
  params,
  tokens: jax.Array,
  *,
  train: bool = False,
  rng: jax.Array | None = None,
  index: jax.Array | None = None,
) -> jax.Array:
  """Cross-entropy [B, T] of each next token given the ones before it."""
  inputs, targets = tokens[:, :-1], tokens[:, 1:]
  if train and model.dropout > 0:
    # Masks per example from its global position: the same on any number of devices.
    logits = model.apply(params, inputs, train=True, rngs={'dropout': rng}, example_ids=index)
  else:
    logits = model.apply(params, inputs, train=False)
  return optax.softmax_cross_entropy_with_integer_labels(logits, targets)


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  """The language model's fields, with nanoGPT's recipe (shakespeare_char, GPU size)."""
  config_lib.add_fields(
    c,
    {
      # genjax.models.DecoderLM's arguments, but vocab_size (from the tokenizer).
      'model.num_layers': 6,
      'model.num_heads': 6,
      'model.width': 384,
      'model.mlp_ratio': 4,
      'model.dropout': 0.2,
      'model.use_bias': False,
      'model.dtype': 'float32',  # computation dtype: 'float32' | 'bfloat16'
      'model.remat': 'none',  # activation checkpointing: 'none' | 'full' | 'dots' | 'dots_no_batch'
      'model.attention': 'auto',  # 'einsum' on CPU, else 'xla'; 'cudnn' (fused, NVIDIA GPUs)
      # Random bits per element of a dropout mask: 8 (rate rounded to a multiple of 1/256,
      # several times cheaper on a CPU) or 32 (the rate exact).
      'model.dropout_bits': 8,
      # What launch.evaluate adds for code: the share of held-out function headers whose
      # sampled completion parses (0 = off), and how they are sampled.
      'eval.parse_samples': 0,
      'eval.parse_max_new_tokens': 128,
      'eval.parse_temperature': 0.8,
      'eval.parse_top_k': 0,
      'eval.parse_seed': 0,
      # The text written to samples/ during training.
      'sample.prompt': '\n',
      'sample.max_new_tokens': 500,
      'sample.temperature': 0.8,
      'sample.top_k': 200,
      'sample.top_p': 1.0,
    },
  )
  # One value shared by the model and the data windows: override either.
  c.model.block_size = c.data.get_ref('block_size')

  c.optim.name = 'adamw'
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 100
  c.optim.schedule = 'cosine'
  c.optim.end_learning_rate_factor = 0.1  # cosine decay to a tenth of the peak
  c.optim.b2 = 0.99
  c.optim.weight_decay = 0.1
  c.optim.decay_only_matrices = True  # no decay on biases and LayerNorm scales (nanoGPT)
  c.optim.grad_clip_norm = 1.0
  # The explicit per-device step: XLA:CPU runs it faster than the jit-partitioned one
  # (2 CPU devices; time ratio, median over paired chunks: CPU size 0.88 and 0.94 in
  # two runs of 120 pairs, default size 0.93).
  c.parallel.strategy = 'pmap'
  c.train.log_every = 50
  c.train.eval_every = 250
  c.train.checkpoint_every = 500
  c.train.sample_every = 1000
  c.eval.batch_size = 64
  c.eval.num_examples = 10_000  # validation windows scored during training (all of them)


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  del runs
  tokenizer = spec.tokenizer('tokens')
  model = make_model(config.model, tokenizer.vocab_size)
  if spec['tokens'].shape[0] != model.block_size + 1:
    raise ConfigError(
      f'config.model.block_size={model.block_size}, but the data has windows '
      f'of {spec["tokens"].shape[0]} tokens: windows must be block_size + 1.'
    )
  sampler = lm_sampling.TextSampler(model, tokenizer)

  def init(rng, batch):
    return model.init(rng, jnp.asarray(batch['tokens'])[:, :-1]), {}

  def loss(params, batch, rng):
    losses = token_losses(model, params, batch['tokens'], train=True, rng=rng, index=batch['index'])
    return jnp.mean(losses), {}

  def eval_metrics(params, batch, rng):
    del rng
    return {'loss': jnp.mean(token_losses(model, params, batch['tokens']), axis=-1)}

  window_losses = jax.jit(
    lambda params, tokens: jnp.mean(token_losses(model, params, tokens), axis=-1)
  )

  def validation_loss(params, windows: np.ndarray, batch_size: int) -> float:
    """Mean loss over all windows (every window has the same number of tokens)."""
    total = 0.0
    for start in range(0, len(windows), batch_size):
      chunk = windows[start : start + batch_size]
      pad = batch_size - len(chunk)  # one shape: compiled once
      padded = np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)]) if pad else chunk
      total += float(jnp.sum(window_losses(params, padded)[: len(chunk)]))
    return total / len(windows)

  def evaluate(params, data, rng, eval_config=config.eval):
    windows = data.test['tokens']
    loss_nats = validation_loss(params, windows, eval_config.batch_size)
    results = {
      'loss': loss_nats,
      'perplexity': math.exp(loss_nats),
      'val_tokens': int(windows.shape[0] * (windows.shape[1] - 1)),
    }
    if tokenizer.kind == 'char':
      results['bits_per_char'] = loss_nats / math.log(2)
    else:  # nats over the characters those tokens spell
      chars = sum(len(tokenizer.decode(w[1:])) for w in windows)
      results['bits_per_char'] = loss_nats * results['val_tokens'] / chars / math.log(2)
    if eval_config.parse_samples:
      results.update(sampler.parse_rate(params, data.extras['val_texts'], rng, eval_config))
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
    num_samples=1,
    on_text=None,
  ):
    """`num_samples` continuations of `prompt`, each after the prompt; with `on_text`, the
    first streams to it as it is generated (prompt not included)."""
    del arrays, num
    texts = sampler.sample(
      params,
      prompt,
      rng,
      max_new_tokens=max_new_tokens,
      temperature=temperature,
      top_k=top_k,
      top_p=top_p,
      num_samples=num_samples,
      on_text=on_text,
    )
    if num_samples == 1:
      return outputs.Text(prompt + texts[0], streamed=on_text is not None)
    return outputs.Text(''.join(prompt + t + SEPARATOR for t in texts))

  sample = View(
    view_sample,
    options=('prompt', 'max_new_tokens', 'temperature', 'top_k', 'top_p', 'num_samples', 'on_text'),
  )
  return Task(
    name='lm',
    model=model,
    init=init,
    loss=loss,
    eval_metrics=eval_metrics,
    evaluate=evaluate,
    views={'sample': sample},
    default_view='sample',
  )
