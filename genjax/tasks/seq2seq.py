"""The encoder-decoder family: translation and summarization of text pairs.

Batches hold `source` (pieces + EOS) and `target` (BOS + pieces + EOS) with their masks,
cut under a token budget (`genjax.data.token_budget`), and `token_scale`, the global
batch's rows over its real target tokens. The decoder reads `target[:, :-1]` and predicts
`target[:, 1:]`; the loss is label-smoothed cross-entropy summed over an example's real
tokens times `token_scale`, so the batch mean is the mean per target token of the whole
global batch, the same on any number of devices or micro-batches. `nll` (in the logs) is
the same without smoothing: nats per target token.

While training, `bleu` is the greedy BLEU of the first `eval.bleu_examples` validation
pairs. `launch.evaluate` translates the split `eval.split` with `eval.beam_size` and
`eval.alpha` and reports BLEU on the prepared (tokenized, lowercased) text, sacreBLEU on
detokenized text with its signature, chrF and the loss; or, for summaries
(`eval.metrics='summary'`), CodeXGLUE's smoothed BLEU-4 and ROUGE-L, beside two
baselines scored the same way (the data's `baselines`).
"""

from __future__ import annotations

import logging
import math
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.data import datasets, text_pairs
from genjax.evaluation import bleu
from genjax.models import dropout as dropout_lib
from genjax.models.seq2seq import PAD_ID, EncoderDecoder
from genjax.tasks import bert
from genjax.tasks.base import Task, View, per_example_keys
from genjax.tasks.translator import Decoding, Translator, split_sources
from genjax.writers import outputs

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


# A Python file given to a summarizer: each function (or method) is one input.
def functions_of(source: str) -> list[str]:
  from genjax.data import docstrings  # pylint: disable=import-outside-toplevel

  return [f.code for f in docstrings.functions(source)]


def _read_input_file(path: str) -> str:
  try:
    with open(path, encoding='utf-8') as f:
      return f.read().rstrip('\n')
  except (OSError, UnicodeDecodeError) as e:
    raise ConfigError(f'--input_file={path}: cannot read it as UTF-8 text ({e}).') from e


METRICS = ('translation', 'summary')
_WORD_DROPOUT_STREAM = 1  # fold_in constant of word dropout's key
_SOURCE_MASK_STREAM = 2  # and of the source masking's (loss.source_mlm)


def _preparation(data: ml_collections.ConfigDict) -> text_pairs.Preparation:
  """How inputs become sources without the dataset loaded (sampling): the dataset module's
  own `preparation(data)` where it has one (code with hints), else text_pairs'."""
  own = getattr(datasets.module(data.name), 'preparation', text_pairs.preparation)
  return own(data)


def make_model(
  model_config: ml_collections.ConfigDict,
  vocab_size: int,
  source_prediction: bool = False,
  bag_prediction: bool = False,
) -> EncoderDecoder:
  fields = model_config.to_dict()
  dtype = fields.pop('dtype', 'float32')
  if dtype not in DTYPES:
    raise ConfigError(f'config.model.dtype={dtype!r} is not one of {tuple(DTYPES)}.')
  try:
    return EncoderDecoder(
      vocab_size=vocab_size,
      dtype=DTYPES[dtype],
      source_prediction=source_prediction,
      bag_prediction=bag_prediction,
      **fields,
    )
  except ValueError as e:  # a size or a choice that cannot work, named by the model
    raise ConfigError(f'config.model: {e}.') from e


def mask_source(rng, source, example_ids, rate: float, vocab_size: int):
  """BERT's corruption of the source for loss.source_mlm (`bert.mask_tokens`), with
  padding as the [MASK]: a masked token is hidden from every attention, so its state is
  predicted from the others. Per example, from `fold_in(rng, example_id)`."""
  keys = per_example_keys(rng, example_ids)
  return bert.mask_tokens(source, keys, vocab_size=vocab_size, mask_id=PAD_ID, rate=rate)


def drop_words(rng, inputs, example_ids, rate: float):
  """The decoder's input tokens with a share `rate` replaced by PAD_ID (the tokenizer's
  <unk>), never the first (BOS): word dropout (Bowman et al. 2016), which leaves the
  decoder less to predict from its own past and so more reason to read the source. Per
  example, from `fold_in(rng, example_id)`, as the model's dropout is."""
  keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(rng, example_ids)
  keep = jax.vmap(lambda k: dropout_lib.keep_mask(k, inputs.shape[1:], rate, 32))(keys)
  keep = keep.at[:, 0].set(True)
  return jnp.where(keep, inputs, PAD_ID)


def shuffled_sources(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The split with each target paired with the previous example's source."""
  return {k: np.roll(v, 1, axis=0) if k.startswith('source') else v for k, v in arrays.items()}


def token_losses(
  model,
  params,
  batch,
  *,
  smoothing=0.0,
  train=False,
  rng=None,
  word_dropout=0.0,
  aux=None,
):
  """Per example: (smoothed loss summed over its target tokens, nll summed, token count);
  with `aux` (EncoderDecoder's auxiliary requests: predict_source_at, predict_bag), the
  model's dict of auxiliary logits comes fourth."""
  target = batch['target']
  labels, mask = target[:, 1:], batch['target_mask'][:, 1:].astype(jnp.float32)
  inputs = target[:, :-1]
  if train and word_dropout > 0:
    # Its own stream, so the model's dropout masks stay those of a run without it.
    inputs = drop_words(
      jax.random.fold_in(rng, _WORD_DROPOUT_STREAM), inputs, batch['index'], word_dropout
    )
  extra = aux or {}
  if train and model.dropout > 0:
    out = model.apply(
      params,
      batch['source'],
      inputs,
      train=True,
      rngs={'dropout': rng},
      example_ids=batch['index'],
      **extra,
    )
  else:
    out = model.apply(params, batch['source'], inputs, **extra)
  logits, aux_logits = out if extra else (out, None)
  nll = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  if smoothing:
    soft = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), smoothing)
    smoothed = optax.softmax_cross_entropy(logits, soft)
  else:
    smoothed = nll
  found = jnp.sum(smoothed * mask, -1), jnp.sum(nll * mask, -1), jnp.sum(mask, -1)
  return found if aux_logits is None else (*found, aux_logits)


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  """The family's fields, with a small translation model's recipe."""
  config_lib.add_fields(
    c,
    {
      # genjax.models.EncoderDecoder's arguments, but vocab_size (from the tokenizer).
      'model.num_encoder_layers': 3,
      'model.num_decoder_layers': 3,
      'model.num_heads': 4,
      'model.width': 256,
      'model.mlp_ratio': 2,
      'model.dropout': 0.1,
      'model.positions': 'learned',  # 'learned' | 'sinusoidal'
      'model.share_embeddings': True,  # one embedding for source, target and logits
      'model.use_bias': False,
      'model.dtype': 'float32',
      'model.remat': 'none',  # activation checkpointing: 'none' | 'full' | 'dots' | 'dots_no_batch'
      'model.attention': 'auto',
      'model.dropout_bits': 8,
      'loss.label_smoothing': 0.1,
      # Decoder inputs replaced by <unk> in training (drop_words): for targets the decoder
      # could learn to guess without the source (summaries).
      'loss.word_dropout': 0.0,
      # Weight of an auxiliary masked-token loss on the source (BERT's, at a share
      # source_mask_rate of its tokens; EncoderDecoder.source_prediction), 0 = none: it
      # keeps the encoder's states about their tokens while the targets teach it little.
      # In nats of the masked source tokens per target token (logged as source_mlm).
      'loss.source_mlm': 0.0,
      'loss.source_mask_rate': 0.15,
      # Weight of an auxiliary loss on the target's bag of tokens, predicted from the mean
      # of the encoder's output (EncoderDecoder.bag_prediction), 0 = none: nats per target
      # token, logged as bag.
      'loss.bag_of_words': 0.0,
      'eval.split': 'test',  # what launch.evaluate translates (a split of the dataset)
      'eval.beam_size': 5,
      'eval.alpha': 0.6,  # GNMT length penalty exponent
      'eval.max_length_a': 1.5,  # an output may have a * source tokens + b
      'eval.max_length_b': 10,
      'eval.bleu_examples': 200,  # validation pairs translated (greedy) at each eval step
      'eval.metrics': 'translation',  # 'translation' (BLEU, chrF) | 'summary' (BLEU-4, ROUGE-L)
      'sample.input': 'Ein Mann fährt Fahrrad.',  # what samples/ translates while training
    },
  )
  c.model.max_length = c.data.get_ref('max_length')
  # The token budget (data.tokens_per_batch) sets each batch's rows, a multiple of the
  # device count; this is only what the loop checks divides over the devices and traces
  # `init` with: any multiple of them.
  c.data.batch_size = 64
  c.optim.name = 'adamw'
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 1000
  c.optim.schedule = 'cosine'
  c.optim.end_learning_rate_factor = 0.01
  c.optim.b2 = 0.98
  c.optim.weight_decay = 1e-4
  c.optim.decay_only_matrices = True
  c.optim.grad_clip_norm = 1.0
  c.train.log_every = 100
  c.train.eval_every = 1000
  c.train.checkpoint_every = 1000
  c.train.sample_every = 1000
  c.train.keep_checkpoints = 10  # the last checkpoints, kept for averaging
  c.eval.batch_size = 100
  c.eval.num_examples = 10_000  # validation pairs scored for the loss (all of them)


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  del runs
  if config.train.steps_per_call != 1:
    raise ConfigError(
      f'config.train.steps_per_call={config.train.steps_per_call}: token-budget batches '
      'change shape from step to step, so they run one step per call; set it to 1.'
    )
  if config.eval.metrics not in METRICS:
    raise ConfigError(f'config.eval.metrics={config.eval.metrics!r} is not one of {METRICS}.')
  tokenizer = spec.tokenizer('source')
  smoothing = float(config.loss.label_smoothing)
  word_dropout = float(config.loss.word_dropout)
  if not 0.0 <= word_dropout < 1.0:
    raise ConfigError(f'config.loss.word_dropout={word_dropout} must be in [0, 1).')
  source_mlm, mask_rate = float(config.loss.source_mlm), float(config.loss.source_mask_rate)
  if source_mlm < 0 or not 0.0 < mask_rate < 1.0:
    raise ConfigError(
      f'config.loss.source_mlm={source_mlm} must be >= 0 and config.loss.source_mask_rate='
      f'{mask_rate} in (0, 1); BERT masks 0.15.'
    )
  bag_weight = float(config.loss.bag_of_words)
  if bag_weight < 0:
    raise ConfigError(f'config.loss.bag_of_words={bag_weight} must be >= 0 (0 is off).')
  model = make_model(
    config.model,
    tokenizer.vocab_size,
    source_prediction=source_mlm > 0,
    bag_prediction=bag_weight > 0,
  )
  translators: dict = {}  # built on first use: the preparation comes with the data

  def translator(data=None) -> Translator:
    if 'main' not in translators:
      prepare = data.extras['prepare'] if data is not None else _preparation(config.data)
      translators['main'] = Translator(
        model, tokenizer, prepare, config.eval.batch_size, config.data.length_multiple
      )
    return translators['main']

  def init(rng, batch):
    return model.init(rng, jnp.asarray(batch['source']), jnp.asarray(batch['target'])[:, :-1]), {}

  def loss(params, batch, rng):
    kwargs = dict(smoothing=smoothing, train=True, rng=rng, word_dropout=word_dropout)
    if not (source_mlm or bag_weight):
      smoothed, nll, _ = token_losses(model, params, batch, **kwargs)
      scale = batch['token_scale']
      return jnp.mean(smoothed * scale), {'nll': jnp.mean(nll * scale)}
    requests, masked = {}, None
    if source_mlm:
      masked = mask_source(
        jax.random.fold_in(rng, _SOURCE_MASK_STREAM),
        batch['source'],
        batch['index'],
        mask_rate,
        tokenizer.vocab_size,
      )
      batch = dict(batch, source=masked['inputs'])
      requests['predict_source_at'] = masked['positions']
    if bag_weight:
      requests['predict_bag'] = True
    smoothed, nll, _, aux = token_losses(model, params, batch, aux=requests, **kwargs)
    # Each auxiliary loss is summed over a row's terms and scaled as the target tokens
    # are: nats per target token of the global batch, the same however the rows are split
    # over devices (a mean over its own terms would need their global count).
    scale = batch['token_scale']
    total = jnp.mean(smoothed * scale)
    metrics = {'nll': jnp.mean(nll * scale)}
    if source_mlm:
      xent = optax.softmax_cross_entropy_with_integer_labels(aux['source'], masked['targets'])
      metrics['source_mlm'] = jnp.mean(jnp.sum(xent * masked['weights'], -1) * scale)
      total = total + source_mlm * metrics['source_mlm']
    if bag_weight:
      # Every target token scored by the one distribution: the cross-entropy against the
      # target's bag, its tokens in proportion to their counts.
      labels, mask = batch['target'][:, 1:], batch['target_mask'][:, 1:]
      log_p = jax.nn.log_softmax(aux['bag'])
      picked = -jnp.take_along_axis(log_p, labels, axis=-1)
      metrics['bag'] = jnp.mean(jnp.sum(picked * mask, -1) * scale)
      total = total + bag_weight * metrics['bag']
    return total, metrics

  def eval_metrics(params, batch, rng):
    del rng
    _, nll, tokens = token_losses(model, params, batch)
    return {'loss': nll / jnp.maximum(tokens, 1.0)}  # per example: nats per target token

  batch_losses = jax.jit(lambda params, batch: token_losses(model, params, batch)[1:])

  def split_loss(params, arrays, batch_size):
    total, tokens = 0.0, 0.0
    for start in range(0, len(arrays['source']), batch_size):
      chunk = {k: v[start : start + batch_size] for k, v in arrays.items()}
      pad = batch_size - len(chunk['source'])  # one shape: compiled once
      if pad:
        chunk = {
          k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) for k, v in chunk.items()
        }
      nll, count = batch_losses(params, chunk)
      total, tokens = total + float(jnp.sum(nll)), tokens + float(jnp.sum(count))
    return total / max(tokens, 1.0)

  def decoding(eval_config, greedy=False) -> Decoding:
    return Decoding(
      beam_size=1 if greedy else int(eval_config.beam_size),
      alpha=0.0 if greedy else float(eval_config.alpha),
      max_length_a=float(eval_config.max_length_a),
      max_length_b=int(eval_config.max_length_b),
    )

  def texts(data, split, side):
    return list(getattr(data.extras['prepared'][split], side))

  def corpus_metrics(params, data, rng):
    del rng
    n = int(config.eval.bleu_examples)
    if not n:
      return {}
    references = texts(data, 'test', 'targets')[:n]
    sources = split_sources(data.test, n)
    hypotheses = translator(data).outputs(params, sources, decoding(config.eval, greedy=True))
    if config.eval.metrics == 'summary':
      found = {'bleu4': bleu.smoothed_bleu4(hypotheses, references)}
    else:
      found = {'bleu': bleu.tokenized_bleu(hypotheses, references)}
    # How much the source lowers the loss on these pairs: near 0, the decoder is guessing
    # from the targets' language alone, whatever the BLEU.
    arrays = {k: v[:n] for k, v in data.test.items()}
    batch_size = int(config.eval.batch_size)
    found['source_gain'] = split_loss(params, shuffled_sources(arrays), batch_size) - split_loss(
      params, arrays, batch_size
    )
    return found

  def evaluate(params, data, rng, eval_config=config.eval):
    del rng
    split = eval_config.split
    if split not in data.splits:
      raise ConfigError(
        f'config.eval.split={split!r}: the dataset has {sorted(data.splits)} besides train.'
      )
    found = translator(data)
    sources, references = texts(data, split, 'sources'), texts(data, split, 'targets')
    start = time.perf_counter()
    hypotheses = found.outputs(params, split_sources(data.split(split)), decoding(eval_config))
    seconds = time.perf_counter() - start
    arrays, batch_size = data.split(split), int(eval_config.batch_size)
    loss_nats = split_loss(params, arrays, batch_size)
    results = {
      'split': split,
      'num_examples': len(sources),
      'beam_size': int(eval_config.beam_size),
      'alpha': float(eval_config.alpha),
      'decode_seconds': seconds,
      'loss': loss_nats,
      'perplexity': math.exp(loss_nats),
      # Near `loss`: the model does not read its input.
      'loss_shuffled_sources': split_loss(params, shuffled_sources(arrays), batch_size),
    }
    if eval_config.metrics == 'summary':
      results['bleu4'] = bleu.smoothed_bleu4(hypotheses, references)
      results['rouge_l'] = bleu.rouge_l(hypotheses, references)
      for name, guesses in data.extras.get('baselines', {}).get(split, {}).items():
        results[f'{name}_bleu4'] = bleu.smoothed_bleu4(guesses, references)
        results[f'{name}_rouge_l'] = bleu.rouge_l(guesses, references)
    else:
      raw = data.extras['raw'][split].targets
      detokenized = found.detokenize(hypotheses)
      results['bleu'] = bleu.tokenized_bleu(hypotheses, references)
      lowercase = found.prepare.lowercase
      score, signature = bleu.sacrebleu_score(detokenized, raw, lowercase=lowercase)
      results['sacrebleu'], results['sacrebleu_signature'] = score, signature
      results['chrf'] = bleu.chrf(detokenized, raw)
    results['examples'] = [
      {'source': s, 'output': h, 'reference': r}
      for s, h, r in list(zip(sources, hypotheses, references))[:5]
    ]
    return results

  def view_translate(
    params,
    arrays,
    rng,
    num,
    *,
    input=None,  # pylint: disable=redefined-builtin (the flag's name)
    input_file=None,
    beam=int(config.eval.beam_size),
    alpha=float(config.eval.alpha),
  ):
    """One output line per input: `input`, or each unit of `input_file` (a line of text,
    or a function of a Python file for summaries). An empty input gives an empty line."""
    del arrays, rng, num
    if input_file is not None:
      text = _read_input_file(input_file)
      lines = functions_of(text) if config.eval.metrics == 'summary' else text.split('\n')
    else:
      lines = [config.sample.input if input is None else input]
    found = translator()
    filled = [i for i, line in enumerate(lines) if line.strip()]
    for i in sorted(set(range(len(lines))) - set(filled)):
      logging.warning('Input %d is empty: its output is an empty line.', i + 1)
    out = [''] * len(lines)
    if filled:
      search = Decoding(beam, alpha, config.eval.max_length_a, config.eval.max_length_b)
      translated = found.translate(params, [lines[i] for i in filled], search)
      for i, text in zip(filled, found.detokenize(translated)):
        out[i] = text
    return outputs.Text('\n'.join(out) + '\n')

  return Task(
    name='seq2seq',
    model=model,
    init=init,
    loss=loss,
    eval_metrics=eval_metrics,
    evaluate=evaluate,
    corpus_metrics=corpus_metrics,
    views={'translate': View(view_translate, options=('input', 'input_file', 'beam', 'alpha'))},
    default_view='translate',
  )
