"""The classifier family: the evaluation network behind FID, Inception Score and
precision/recall, and the baseline of the GAN data-augmentation experiment."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from genjax.models.classifier import Classifier
from genjax.tasks.base import Task, per_example_keys, to_float


def build(config: ml_collections.ConfigDict, image_shape: tuple[int, int, int]) -> Task:
  model = Classifier(image_shape=tuple(image_shape), **config.model)

  def init(rng, batch):
    return model.init(rng, to_float(batch['image'][:1])), {}

  def logits_of(params, batch, rng, train):
    x = to_float(batch['image'])
    if not train:
      return model.apply(params, x)
    # Dropout masks per example, so they do not depend on the device layout.
    keys = per_example_keys(rng, batch['index'])
    one = lambda xi, k: model.apply(params, xi[None], train=True, rngs={'dropout': k})[0]
    return jax.vmap(one)(x, keys)

  def loss(params, batch, rng):
    logits = logits_of(params, batch, rng, train=True)
    xent = optax.softmax_cross_entropy_with_integer_labels(logits, batch['label'])
    accuracy = jnp.mean(jnp.argmax(logits, -1) == batch['label'])
    return jnp.mean(xent), {'accuracy': accuracy}

  def eval_metrics(params, batch, rng):
    logits = logits_of(params, batch, rng, train=False)
    return {'loss': optax.softmax_cross_entropy_with_integer_labels(logits, batch['label']),
            'accuracy': (jnp.argmax(logits, -1) == batch['label']).astype(jnp.float32)}

  predict = jax.jit(lambda params, x: model.apply(params, x))

  def evaluate(params, data, rng, eval_config=config.eval):
    del rng
    x, y = data.test['image'], data.test['label']
    correct = 0
    for start in range(0, len(x), eval_config.batch_size):
      chunk = np.asarray(x[start:start + eval_config.batch_size], np.float32) / 255.0
      correct += int(np.sum(np.argmax(predict(params, chunk), -1) == y[start:start + len(chunk)]))
    return {'accuracy': correct / len(x), 'num_examples': int(len(x))}

  return Task(name='classifier', model=model, init=init, loss=loss,
              eval_metrics=eval_metrics, evaluate=evaluate, views={}, default_view='')
