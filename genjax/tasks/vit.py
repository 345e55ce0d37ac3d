"""The Vision Transformer family: `ViT` trained to classify labelled images.

Trained and evaluated as the conv classifier is (test accuracy in eval.json), and, like
it, usable as the GAN metrics' feature network (`eval.classifier_workdir`): the model
has the same `__call__` (logits) and `features` methods. Training adds light
augmentation (random crops after zero padding, left-right flips where the data allows)
and label smoothing. Every random draw (augmentation, dropout masks) comes from the
example's position in the global batch, so 'jit', 'pmap' and one device agree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.models import ViT
from genjax.tasks.base import Task, per_example_keys, to_float
from genjax.tasks.image_augment import CropFlip

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
# Folded into the step key for the augmentation draws, so they never reuse the keys the
# dropout masks come from.
_AUGMENT_SALT = 0xC409


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  config_lib.add_fields(
    c,
    {
      # genjax.models.ViT's arguments, but image_shape (from the data).
      'model.num_classes': 10,
      'model.patch_size': 4,  # must divide the image's height and width
      'model.width': 64,  # token size, and the feature size of FID and precision/recall
      'model.num_layers': 6,
      'model.num_heads': 4,
      'model.mlp_ratio': 2,
      'model.dropout': 0.0,
      'model.pool': 'cls',  # 'cls' (a class token) | 'mean' (of the patch tokens)
      'model.stem': 'patch',  # 'patch' (linear patch embedding) | 'conv' (3x3 stride-2 convs)
      'model.weight_init': 'xavier',  # the blocks' kernels: 'xavier' (Glorot) | 'gpt' (normal 0.02)
      'model.use_bias': True,
      'model.dtype': 'float32',  # computation dtype: 'float32' | 'bfloat16'
      'model.remat': 'none',  # activation checkpointing: 'none' | 'full' | 'dots' | 'dots_no_batch'
      'model.dropout_bits': 8,  # random bits per dropout mask element: 8 or 32 (exact rate)
      # Training-time augmentation, per example inside the loss.
      'augment.crop_padding': 2,  # zero-pad by this many pixels, crop back at random; 0 = off
      'augment.flip': False,  # random left-right flips: only where mirrored images are valid
      'loss.label_smoothing': 0.1,  # targets (1 - s) one-hot + s / num_classes
    },
  )
  # The usual ViT recipe: AdamW, weight decay on matrices only, warmup then cosine.
  c.optim.name = 'adamw'
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 200
  c.optim.weight_decay = 0.05
  c.optim.decay_only_matrices = True
  c.optim.grad_clip_norm = 1.0


def make_model(model_config: ml_collections.ConfigDict, image_shape) -> ViT:
  fields = model_config.to_dict()
  dtype = fields.pop('dtype', 'float32')
  if dtype not in DTYPES:
    raise ConfigError(f'config.model.dtype={dtype!r} is not one of {tuple(DTYPES)}.')
  try:
    return ViT(image_shape=image_shape, dtype=DTYPES[dtype], **fields)
  except ValueError as e:  # name the config fields, not just the module's arguments
    raise ConfigError(f'config.model: {e}') from None


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  del runs  # a ViT needs no other trained run
  if 'label' not in spec:
    raise ConfigError(
      f'The vit family needs labelled images; the {config.data.name} dataset has none.'
    )
  image_shape = spec.image_shape()
  num_classes = int(config.model.num_classes)
  labels_in_data = spec['label'].num_values
  if labels_in_data and labels_in_data != num_classes:
    raise ConfigError(
      f'config.model.num_classes={num_classes}, but {config.data.name} has '
      f'{labels_in_data} classes; pass --config.model.num_classes={labels_in_data}.'
    )
  smoothing = float(config.loss.label_smoothing)
  if not 0.0 <= smoothing < 1.0:
    raise ConfigError(f'config.loss.label_smoothing={smoothing} must be in [0, 1).')
  augment = CropFlip(config.augment.crop_padding, bool(config.augment.flip))
  augment.check(image_shape)
  model = make_model(config.model, image_shape)

  def init(rng, batch):
    return model.init(rng, to_float(batch['image'][:1])), {}

  def loss(params, batch, rng):
    x, labels, index = to_float(batch['image']), batch['label'], batch['index']
    x = augment(x, per_example_keys(jax.random.fold_in(rng, _AUGMENT_SALT), index))
    if model.dropout > 0:
      logits = model.apply(params, x, train=True, rngs={'dropout': rng}, example_ids=index)
    else:
      logits = model.apply(params, x)
    targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), smoothing)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    metrics = {'nll': jnp.mean(nll), 'accuracy': jnp.mean(jnp.argmax(logits, -1) == labels)}
    return jnp.mean(optax.softmax_cross_entropy(logits, targets)), metrics

  def eval_metrics(params, batch, rng):
    del rng
    logits = model.apply(params, to_float(batch['image']))
    return {
      'loss': optax.softmax_cross_entropy_with_integer_labels(logits, batch['label']),
      'accuracy': (jnp.argmax(logits, -1) == batch['label']).astype(jnp.float32),
    }

  score = jax.jit(eval_metrics)

  def evaluate(params, data, rng, eval_config=config.eval):
    """Accuracy and cross-entropy (nats, unsmoothed) on the whole test split."""
    x, y = data.test['image'], data.test['label']
    correct, nll = 0.0, 0.0
    for start in range(0, len(x), eval_config.batch_size):
      chunk = {
        'image': x[start : start + eval_config.batch_size],
        'label': y[start : start + eval_config.batch_size],
      }
      scores = jax.device_get(score(params, chunk, rng))
      correct += float(np.sum(scores['accuracy']))
      nll += float(np.sum(scores['loss']))
    return {'accuracy': correct / len(x), 'loss': nll / len(x), 'num_examples': int(len(x))}

  return Task(
    name='vit',
    model=model,
    init=init,
    loss=loss,
    eval_metrics=eval_metrics,
    evaluate=evaluate,
    views={},
    default_view='',
  )
