"""The FID/IS classifier: shapes, validation, dropout only when training, and that it learns.

Shape checks use jax.eval_shape (traces, never compiles): XLA:CPU compiles of conv
initialisers take seconds each.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax.models.classifier import Classifier

# Tiny hyperparameters keep every test to a fraction of a second.
TINY = dict(widths=(4, 8), hidden=16)
KEY = jax.random.key(0)


def images(shape, batch=2, seed=0):
  return jax.random.uniform(jax.random.key(seed), (batch,) + tuple(shape))


def shapes_of(model, x, method=None, **kwargs):
  def run():
    variables = model.init(KEY, x)
    return model.apply(variables, x, method=method, **kwargs)

  return jax.eval_shape(run)


@pytest.mark.parametrize(
  'image_shape, num_classes, widths',
  [
    ((28, 28, 1), 10, (4, 8)),  # MNIST / Fashion-MNIST: 28 -> 14 -> 7
    ((32, 32, 3), 5, (4, 8, 8)),  # fruits
    ((7, 9, 2), 3, (4, 4)),  # odd sizes: pools round up
    ((28, 28, 1), 10, ()),  # no convs: an MLP classifier
  ],
)
def test_logits_and_features_shapes(image_shape, num_classes, widths):
  model = Classifier(image_shape=image_shape, num_classes=num_classes, widths=widths, hidden=16)
  x = images(image_shape, batch=3)
  logits = shapes_of(model, x)
  assert logits.shape == (3, num_classes) and logits.dtype == jnp.float32
  feats = shapes_of(model, x, method='features')
  assert feats.shape == (3, 16) and feats.dtype == jnp.float32


def test_lists_become_tuples_and_bfloat16_outputs_float32():
  model = Classifier(image_shape=[28, 28, 1], widths=[4, 8], hidden=16, dtype=jnp.bfloat16)
  assert model.image_shape == (28, 28, 1) and model.widths == (4, 8)
  hash(model)  # hashable, so usable as a jit static argument
  assert shapes_of(model, images((28, 28, 1))).dtype == jnp.float32


def test_default_hyperparameters():
  model = Classifier()
  assert (model.image_shape, model.num_classes, model.widths, model.hidden, model.dropout) == (
    (28, 28, 1),
    10,
    (32, 64),
    128,
    0.0,
  )
  assert shapes_of(model, images((28, 28, 1)), method='features').shape == (2, 128)


@pytest.mark.parametrize(
  'kwargs, match',
  [
    (dict(image_shape=(28, 28)), 'image_shape'),
    (dict(num_classes=1), 'num_classes'),
    (dict(hidden=0), 'hidden'),
    (dict(dropout=1.0), 'dropout'),
  ],
)
def test_bad_configuration_fails_early(kwargs, match):
  with pytest.raises(ValueError, match=match):
    Classifier(**kwargs)


def test_wrong_image_shape_fails():
  model = Classifier(image_shape=(28, 28, 1), **TINY)
  with pytest.raises(ValueError, match='expected images'):
    shapes_of(model, images((32, 32, 3)))


def test_features_are_nonnegative_and_dropout_only_in_train_mode():
  model = Classifier(image_shape=(8, 8, 1), num_classes=3, widths=(4,), hidden=32, dropout=0.5)
  x = images((8, 8, 1), batch=4)
  variables = model.init(KEY, x)
  feats = model.apply(variables, x, method='features')
  assert feats.shape == (4, 32) and bool(jnp.all(feats >= 0))  # post-ReLU
  # Evaluation: deterministic, no rng needed.
  eval_a = model.apply(variables, x)
  eval_b = model.apply(variables, x, train=False)
  np.testing.assert_array_equal(eval_a, eval_b)
  # Training: the dropout rng changes the logits, and the rng is required.
  train_a = model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(1)})
  train_b = model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(2)})
  assert not np.allclose(train_a, eval_a) and not np.allclose(train_a, train_b)
  with pytest.raises(Exception):
    model.apply(variables, x, train=True)
  # No dropout rate: train mode equals eval mode and needs no rng.
  plain = Classifier(image_shape=(8, 8, 1), num_classes=3, widths=(4,), hidden=32)
  np.testing.assert_allclose(plain.apply(variables, x, train=True), eval_a, rtol=1e-6)


def test_a_few_adam_steps_lower_the_cross_entropy():
  # Learnable: the class is the quadrant holding the brightest blob.
  rng = np.random.default_rng(0)
  n, size = 64, 8
  labels = rng.integers(0, 4, n)
  x = rng.uniform(0.0, 0.2, (n, size, size, 1)).astype(np.float32)
  for i, label in enumerate(labels):
    r, c = divmod(int(label), 2)
    x[i, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4, 0] += 0.8
  x, y = jnp.asarray(x), jnp.asarray(labels)

  model = Classifier(
    image_shape=(size, size, 1), num_classes=4, widths=(8,), hidden=32, dropout=0.1
  )
  params = model.init(KEY, x)['params']
  tx = optax.adam(1e-2)

  def loss_fn(params, rng, train):
    logits = model.apply({'params': params}, x, train=train, rngs={'dropout': rng})
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def step(params, opt_state, rng):
    grads = jax.grad(loss_fn)(params, rng, True)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  before = float(loss_fn(params, KEY, False))
  opt_state = tx.init(params)
  for i in range(30):
    params, opt_state = step(params, opt_state, jax.random.key(i + 1))
  after = float(loss_fn(params, KEY, False))
  assert after < 0.5 * before, (before, after)
