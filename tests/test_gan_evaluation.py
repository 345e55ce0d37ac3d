"""The GAN report end to end, with a trained classifier and "generators" made of real images.

A generator that returns test images scores like the test set; one that draws the
wrong class for each requested label keeps its unconditional scores but loses its label
accuracy; one that has lost half the classes shows it in coverage and recall.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax.scipy.special import ndtr

from genjax import api
from genjax.data import datasets
from genjax.run import loop, restore
from genjax.tasks import gan_evaluation
from tests import tiny

NUM = 400


@pytest.fixture(scope='module')
def setting(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('classifier'))
  c = tiny.classifier(steps=150)
  c.data.num_train = 4000
  c.data.batch_size = 64
  c.model.widths = (8, 16)
  c.model.hidden = 32
  c.train.eval_every = 0
  c.train.checkpoint_every = 150
  c.train.log_every = 50
  loop.train_and_evaluate(c, workdir)
  c.data.num_test = NUM
  c.data.num_train = NUM
  data = datasets.load(c.data)
  eval_config = ml_collections.ConfigDict(
    {'classifier_workdir': workdir, 'num_samples': NUM, 'batch_size': 100}
  )
  return data, eval_config, gan_evaluation.load_classifier(restore.RUNS, workdir)


def _real_image_generator(data, class_of_label=lambda y: y, classes=range(10)):
  """sample_fn(z, labels): a test image of class class_of_label(label), picked by z[:, 0].

  Unconditional (labels None): any test image of `classes`, picked by z[:, 0].
  """
  images = jnp.asarray(data.test['image'], jnp.float32) / 255.0
  labels = data.test['label']
  by_class = [np.flatnonzero(labels == c) for c in range(10)]
  width = max(len(ix) for ix in by_class)
  table = jnp.asarray(np.stack([np.resize(ix, width) for ix in by_class]))
  counts = jnp.asarray([len(ix) for ix in by_class])
  pool = jnp.asarray(np.flatnonzero(np.isin(labels, list(classes))))

  def sample_fn(_, z, y):
    u = ndtr(z[:, 0])  # uniform in [0, 1) from the Gaussian latent
    if y is None:
      return images[pool[jnp.minimum((u * len(pool)).astype(jnp.int32), len(pool) - 1)]]
    cls = class_of_label(y)
    pick = jnp.minimum((u * counts[cls]).astype(jnp.int32), counts[cls] - 1)
    return images[table[cls, pick]]

  return sample_fn


def test_real_images_score_like_the_test_set(setting):
  data, eval_config, classifier = setting
  r = gan_evaluation.evaluate(
    _real_image_generator(data),
    (),
    classifier,
    data,
    jax.random.PRNGKey(0),
    eval_config,
    latent_dim=4,
    num_classes=0,
  )
  # A resample of the test set: FID near the train-vs-test reference, IS near the test IS.
  assert r['fid'] < 3 * r['fid_train_vs_test'] + 1.0
  assert abs(r['inception_score'] - r['inception_score_test']) < 0.15 * r['inception_score_test']
  assert r['precision'] > 0.9 and r['recall'] > 0.8
  assert r['classes_missing'] == 0
  assert 'label_accuracy' not in r


def test_shuffled_labels_keep_quality_but_lose_label_accuracy(setting):
  data, eval_config, classifier = setting
  rng = jax.random.PRNGKey(1)

  def score(generator, **options):
    return gan_evaluation.evaluate(
      generator, (), classifier, data, rng, eval_config, latent_dim=4, num_classes=10, **options
    )

  right = score(_real_image_generator(data))
  wrong_class = _real_image_generator(data, lambda y: (y + 1) % 10)
  shifted = score(wrong_class)
  assert right['label_accuracy'] > 0.7  # the tiny classifier's accuracy
  assert shifted['label_accuracy'] < 0.15
  # The images are real either way: unconditional quality does not see the labels.
  for key in ('fid', 'inception_score', 'precision', 'recall'):
    assert abs(right[key] - shifted[key]) < 0.25 * max(abs(right[key]), 1.0), key
  # InfoGAN codes are passed like labels, but their meaning is learned: no accuracy.
  codes = score(wrong_class, labels_are_classes=False)
  assert 'label_accuracy' not in codes
  assert codes['fid'] == shifted['fid']


def test_half_the_classes_missing_shows_in_coverage_and_recall(setting):
  data, eval_config, classifier = setting
  rng = jax.random.PRNGKey(2)
  full = gan_evaluation.evaluate(
    _real_image_generator(data), (), classifier, data, rng, eval_config, 4, 0
  )
  half = gan_evaluation.evaluate(
    _real_image_generator(data, classes=range(5)), (), classifier, data, rng, eval_config, 4, 0
  )
  # The tiny classifier mistakes a few images for the absent classes; the shares still
  # show which half is gone.
  assert sum(half['class_shares'][5:]) < 0.2 and full['min_share'] > 0.04
  assert half['recall'] < full['recall'] - 0.25
  assert half['fid'] > 3 * full['fid']
  assert half['inception_score'] < full['inception_score']


def test_a_label_prior_draws_each_label_its_share_of_the_samples(setting):
  data, eval_config, classifier = setting
  seen = []

  def recording(args, z, y):  # batches are generated under jit: record through a callback
    jax.debug.callback(lambda labels: seen.append(np.asarray(labels)), y)
    return _real_image_generator(data)(args, z, y)

  prior = np.asarray([0.5, 0.3, 0.2] + [0.0] * 7)
  r = gan_evaluation.evaluate(
    recording,
    (),
    classifier,
    data,
    jax.random.PRNGKey(0),
    eval_config,
    latent_dim=4,
    num_classes=10,
    labels_are_classes=False,
    label_prior=prior,
  )
  counts = np.bincount(np.concatenate(seen), minlength=10)
  np.testing.assert_array_equal(counts, [200, 120, 80] + [0] * 7)
  assert 'label_accuracy' not in r and sum(r['class_shares'][:3]) > 0.6


def test_allocation_rounds_to_exactly_n_by_largest_remainder():
  allocate = gan_evaluation._allocate  # pylint: disable=protected-access
  np.testing.assert_array_equal(
    np.bincount(allocate(np.asarray([0.335, 0.333, 0.332]), 10)), [4, 3, 3]
  )
  labels = allocate(np.full(7, 1 / 7), 100)
  assert len(labels) == 100
  # Shuffled: each of the Inception Score's splits (tenths) sees most labels, where
  # sorted labels would give each split one or two.
  assert min(len(set(part.tolist())) for part in np.array_split(labels, 10)) >= 4
  np.testing.assert_array_equal(labels, allocate(np.full(7, 1 / 7), 100))


def test_a_vae_is_scored_by_the_classifier_and_loses_nothing_without_one(setting, tmp_path):
  _, setting_config, _ = setting
  workdir = str(tmp_path / 'vae')
  loop.train_and_evaluate(tiny.vae(steps=4), workdir)
  saved, task, state = api.load_state(workdir)
  data = datasets.load(saved.data)
  variables, rng = task.inference_variables(state), jax.random.PRNGKey(3)
  eval_config = ml_collections.ConfigDict(saved.eval.to_dict())
  eval_config.num_samples = 64

  eval_config.classifier_workdir = setting_config.classifier_workdir
  scored = task.evaluate(variables, data, rng, eval_config=eval_config)
  assert scored['num_samples'] == 64 and 'label_accuracy' not in scored  # unconditional
  # Four steps of training draw grey blurs, far from any digit, and far from the test set.
  assert scored['fid'] > 5 * scored['fid_train_vs_test']
  assert {'inception_score', 'precision', 'recall', 'class_shares'} <= set(scored)

  eval_config.classifier_workdir = str(tmp_path / 'no_classifier')
  unscored = task.evaluate(variables, data, rng, eval_config=eval_config)
  assert 'fid' not in unscored  # skipped, with a warning saying how to train one
  # The likelihood and anomaly figures do not depend on the classifier or its key.
  assert unscored == {k: v for k, v in scored.items() if k in unscored}
  assert set(unscored) >= {'nll', 'elbo', 'bits_per_dim'}


def test_a_missing_classifier_names_the_command_that_trains_it(tmp_path):
  with pytest.raises(FileNotFoundError, match='experiments/fruits_classifier.py'):
    gan_evaluation.load_classifier(restore.RUNS, str(tmp_path / 'runs' / 'fruits_classifier'))
