"""The text-classifier family: an `Encoder` with a classification head on its pooled output.

Batches hold `tokens` [B, T] (0 = padding) and `label` [B]; the loss is the cross-entropy
of the class logits. Started from a pretrained BERT (`config.init_from`), the encoder's
trunk is the pretrained one and only the head (`classifier_head`: BERT's tanh pooler and
the class layer) starts at random; trained from scratch, everything does. Dropout masks
are drawn per example, so 'pmap', 'jit' and one device agree.

`evaluate` reports the accuracy on each held-out split the dataset has ('test',
'final_test') and on both together (`held_out_accuracy`, the most examples), with the
per-class accuracies and the majority-class baseline (always the commonest training
class) of the pooled held-out examples.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from genjax.config import ConfigError
from genjax.tasks import encoder_fields
from genjax.tasks.base import Task

HELD_OUT = ('test', 'final_test')


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  encoder_fields.add_config_fields(c)
  # Fine-tuning (Devlin et al. 2019): AdamW, a short warmup, a linear decay to zero.
  c.optim.name = 'adamw'
  c.optim.learning_rate = 1e-4
  c.optim.warmup_steps = 50
  c.optim.schedule = 'linear'
  c.optim.weight_decay = 0.01
  c.optim.decay_only_matrices = True
  c.optim.grad_clip_norm = 1.0
  c.parallel.strategy = 'pmap'
  c.data.batch_size = 32
  c.train.log_every = 50
  c.train.eval_every = 200
  c.train.sample_every = 0  # a classifier draws nothing
  c.eval.batch_size = 100
  c.eval.num_examples = 1_000


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  del runs
  if 'tokens' not in spec or 'label' not in spec or not spec['tokens'].tokenizer:
    raise ConfigError(
      f'The text_classifier family needs labelled token sequences (tokens, label); the '
      f'{config.data.name!r} dataset has none (use stdlib_modules).'
    )
  tokenizer = spec.tokenizer('tokens')
  num_classes = spec['label'].num_values
  model = encoder_fields.make_encoder(
    config.model, tokenizer.vocab_size, spec['tokens'].shape[0], num_classes
  )

  def logits_of(params, tokens, *, train=False, rng=None, index=None):
    if not train:
      return model.apply(params, tokens)
    return model.apply(params, tokens, train=True, rngs={'dropout': rng}, example_ids=index)

  def init(rng, batch):
    return model.init(rng, jnp.asarray(batch['tokens'])[:1]), {}

  def loss(params, batch, rng):
    logits = logits_of(params, batch['tokens'], train=True, rng=rng, index=batch['index'])
    xent = optax.softmax_cross_entropy_with_integer_labels(logits, batch['label'])
    return jnp.mean(xent), {'accuracy': jnp.mean(jnp.argmax(logits, -1) == batch['label'])}

  def eval_metrics(params, batch, rng):
    del rng
    logits = logits_of(params, batch['tokens'])
    return {
      'loss': optax.softmax_cross_entropy_with_integer_labels(logits, batch['label']),
      'accuracy': (jnp.argmax(logits, -1) == batch['label']).astype(jnp.float32),
    }

  predict = jax.jit(lambda params, tokens: jnp.argmax(model.apply(params, tokens), -1))

  def predictions(params, tokens: np.ndarray, batch_size: int) -> np.ndarray:
    out = []
    for start in range(0, len(tokens), batch_size):
      chunk = tokens[start : start + batch_size]
      real = len(chunk)
      if real < batch_size:  # one shape: compiled once
        chunk = np.concatenate([chunk, np.repeat(chunk[:1], batch_size - real, axis=0)])
      out.append(np.asarray(predict(params, chunk))[:real])
    return np.concatenate(out) if out else np.zeros(0, np.int32)

  def evaluate(params, data, rng, eval_config=config.eval):
    del rng
    names = data.extras.get('class_names') or [str(i) for i in range(num_classes)]
    results, pooled_true, pooled_pred = {}, [], []
    for split in HELD_OUT:
      arrays = data.split(split)
      if not arrays:
        continue
      predicted = predictions(params, arrays['tokens'], int(eval_config.batch_size))
      key = 'accuracy' if split == 'test' else f'{split}_accuracy'
      results[key] = float(np.mean(predicted == arrays['label']))
      pooled_true.append(arrays['label'])
      pooled_pred.append(predicted)
    truth, predicted = np.concatenate(pooled_true), np.concatenate(pooled_pred)
    majority = int(np.argmax(np.bincount(data.train['label'], minlength=num_classes)))
    results.update(
      held_out_accuracy=float(np.mean(predicted == truth)),
      majority_class_accuracy=float(np.mean(truth == majority)),
      num_examples=int(len(truth)),
      per_class_accuracy={
        names[c]: float(np.mean(predicted[truth == c] == c))
        for c in range(num_classes)
        if np.any(truth == c)
      },
      num_train=int(len(data.train['label'])),
    )
    return results

  return Task(
    name='text_classifier',
    model=model,
    init=init,
    loss=loss,
    eval_metrics=eval_metrics,
    evaluate=evaluate,
    views={},
    default_view='',
    head=('classifier_head',),
  )
