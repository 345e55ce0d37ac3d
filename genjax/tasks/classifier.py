"""The classifier family: the evaluation network behind FID, Inception Score and
precision/recall, and the baseline of the GAN data-augmentation experiment.

Synthetic augmentation (`config.augment`, see experiments/mnist_augment.py): with
`augment.generator_workdir` set, a trained class-conditional GAN is loaded once when the
task is built, and inside the loss each training example is replaced, with probability
`augment.fraction`, by a generated image of a uniformly random class. Every random choice
(replace or not, class, latent) comes from the example's own key, so the batch seen is
the same under 'jit', 'pmap' and one device. The generator is a frozen constant.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.models.classifier import Classifier
from genjax.tasks.base import Task, per_example_keys, to_float

# Folded into the step key for the augmentation draws, so they never reuse the dropout
# keys (which are the step key folded with each example's index).
_AUGMENT_SALT = 0x5A17


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  config_lib.add_fields(
    c,
    {
      # The Classifier module's arguments (genjax.models.Classifier), but image_shape.
      'model.num_classes': 10,
      'model.widths': (32, 64),  # 3x3 conv + 2x2 max-pool per width
      'model.hidden': 128,  # the feature size of FID and precision/recall
      'model.dropout': 0.0,
      # Synthetic training data from a trained class-conditional GAN (mnist_augment.py):
      # each training example is replaced by a generated one with probability `fraction`.
      'augment.generator_workdir': '',  # '' = off: the plain classifier
      'augment.fraction': 0.5,
    },
  )


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  image_shape = spec.image_shape()
  if 'label' not in spec:
    raise ConfigError(
      f'The classifier family needs labelled images; the {config.data.name} dataset has none.'
    )
  model = Classifier(image_shape=image_shape, **config.model)
  synthesize = make_synthesizer(config, image_shape, runs)

  def init(rng, batch):
    return model.init(rng, to_float(batch['image'][:1])), {}

  def logits_of(params, x, index, rng, train):
    if not train:
      return model.apply(params, x)
    # Dropout masks per example, so they do not depend on the device layout.
    keys = per_example_keys(rng, index)
    one = lambda xi, k: model.apply(params, xi[None], train=True, rngs={'dropout': k})[0]
    return jax.vmap(one)(x, keys)

  def loss(params, batch, rng):
    x, labels, metrics = to_float(batch['image']), batch['label'], {}
    if synthesize is not None:
      x, labels, metrics['synthetic_fraction'] = synthesize(
        x, labels, batch['index'], jax.random.fold_in(rng, _AUGMENT_SALT)
      )
    logits = logits_of(params, x, batch['index'], rng, train=True)
    xent = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    metrics['accuracy'] = jnp.mean(jnp.argmax(logits, -1) == labels)
    return jnp.mean(xent), metrics

  def eval_metrics(params, batch, rng):
    logits = logits_of(params, to_float(batch['image']), None, rng, train=False)
    return {
      'loss': optax.softmax_cross_entropy_with_integer_labels(logits, batch['label']),
      'accuracy': (jnp.argmax(logits, -1) == batch['label']).astype(jnp.float32),
    }

  predict = jax.jit(lambda params, x: model.apply(params, x))

  def evaluate(params, data, rng, eval_config=config.eval):
    del rng
    x, y = data.test['image'], data.test['label']
    correct = 0
    for start in range(0, len(x), eval_config.batch_size):
      chunk = np.asarray(x[start : start + eval_config.batch_size], np.float32) / 255.0
      correct += int(np.sum(np.argmax(predict(params, chunk), -1) == y[start : start + len(chunk)]))
    return {'accuracy': correct / len(x), 'num_examples': int(len(x))}

  return Task(
    name='classifier',
    model=model,
    init=init,
    loss=loss,
    eval_metrics=eval_metrics,
    evaluate=evaluate,
    views={},
    default_view='',
  )


def _train_command(workdir: str) -> str:
  return (
    'python -m launch.main --config=experiments/mnist_cdcgan.py '
    f'--workdir={workdir or "runs/mnist_cdcgan"}'
  )


def make_synthesizer(config: ml_collections.ConfigDict, image_shape, runs):
  """None when augmentation is off, else `synthesize(x, labels, index, rng)`.

  `synthesize` returns (x, labels, share of the batch replaced): x float [B, H, W, C] in
  [0, 1] with each example replaced by a generated one with probability
  `augment.fraction`; replaced examples carry the class they were generated for.
  """
  workdir, fraction = config.augment.generator_workdir, float(config.augment.fraction)
  if not 0.0 <= fraction <= 1.0:
    raise ConfigError(f'config.augment.fraction must be in [0, 1], got {fraction!r}.')
  if not workdir or fraction == 0.0:
    return None  # exactly the plain classifier

  # The saved config is checked before the checkpoint is read: a wrong kind of model
  # is named as such, not reported as a shape mismatch.
  try:
    g_config = runs.config(workdir)
  except FileNotFoundError as e:
    raise FileNotFoundError(
      f'config.augment.generator_workdir={workdir!r} holds no trained GAN. Train the '
      f'class-conditional GAN first:\n  {_train_command(workdir)}\n(augment.generator_workdir'
      "='' trains the classifier without synthetic data)."
    ) from e
  if g_config.task != 'gan':
    raise ConfigError(
      f'config.augment.generator_workdir={workdir!r} holds a '
      f'{g_config.task!r} experiment, not a GAN; train one with\n  '
      f'{_train_command(workdir)}'
    )
  num_classes = int(config.model.num_classes)
  g_classes = int(g_config.model.generator.num_classes)
  if g_classes != num_classes:
    what = (
      f'conditional on {g_classes} classes'
      if g_classes
      else 'self-conditioned on k-means clusters, not labels'
      if g_config.data.clusters
      else 'unconditional'
    )
    raise ConfigError(
      f'config.augment.generator_workdir={workdir!r} holds a GAN that is {what}; '
      f'augmentation needs a class-conditional generator with num_classes={num_classes} '
      f'(config.model.num_classes). Train one with\n  {_train_command(workdir)}'
    )
  if g_config.data.name != config.data.name:
    raise ConfigError(
      f'config.augment.generator_workdir={workdir!r} was trained on {g_config.data.name} '
      f'images; this classifier trains on {config.data.name}. Train a class-conditional '
      'GAN of the same dataset.'
    )
  try:
    trained = runs.load(workdir)
  except FileNotFoundError as e:  # a config.json but no checkpoint yet
    raise FileNotFoundError(
      f'config.augment.generator_workdir={workdir!r}: {e}\nTrain it '
      f'first:\n  {_train_command(workdir)}'
    ) from e
  g_shape = trained.spec.image_shape()
  if g_shape != tuple(image_shape):
    raise ConfigError(
      f'config.augment.generator_workdir={workdir!r} was trained on {g_config.data.name} '
      f'{g_shape} images; this classifier trains on {config.data.name} '
      f'{tuple(image_shape)}. Train a class-conditional GAN of the same dataset.'
    )
  generator, g_variables = trained.model, trained.variables

  # Host copies: the loss closes over them as constants, whatever the mesh.
  frozen = jax.tree.map(np.asarray, jax.device_get(g_variables))
  latent_dim = int(g_config.model.generator.latent_dim)

  def draw(key):
    k_replace, k_label, k_latent = jax.random.split(key, 3)
    return (
      jax.random.uniform(k_replace) < fraction,
      jax.random.randint(k_label, (), 0, num_classes),
      jax.random.normal(k_latent, (latent_dim,)),
    )

  def synthesize(x, labels, index, rng):
    replace, fake_labels, z = jax.vmap(draw)(per_example_keys(rng, index))
    variables = jax.tree.map(lambda v: jax.lax.stop_gradient(jnp.asarray(v)), frozen)
    fake = jax.lax.stop_gradient(generator.apply(variables, z, fake_labels, train=False))
    x = jnp.where(replace[:, None, None, None], fake.astype(x.dtype), x)
    labels = jnp.where(replace, fake_labels, labels)
    return x, labels, jnp.mean(replace.astype(jnp.float32))

  return synthesize
