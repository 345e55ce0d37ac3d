"""The GAN task beyond the step: EMA export, class-conditional views, clear refusals."""

import jax
import numpy as np
import pytest

from genjax.config import ConfigError
from genjax.data import datasets
from genjax.models import Generator
from genjax import api
from genjax.run import loop
from tests import tiny
from tests.trees import assert_trees_equal


def _conditional(steps=4):
  c = tiny.gan(steps)
  c.model.generator.num_classes = 10
  c.model.discriminator.num_classes = 10
  return c


def test_conditional_views_draw_requested_classes(tmp_path):
  workdir = str(tmp_path / 'cgan')
  state = loop.train_and_evaluate(_conditional(), workdir)
  config, task, restored = api.load_state(workdir)
  variables = task.inference_variables(restored)
  # Samples and genjax.load use the EMA generator, not the raw parameters.
  assert_trees_equal(variables['params'], state.extra['ema']['generator'])
  assert isinstance(task.model, Generator)
  rng = jax.random.PRNGKey(0)
  test = datasets.load(config.data).test
  sevens = task.views['sample'](variables, test, rng, 16, classes=[7]).pictures
  assert sevens.shape == (4, 4, 28, 28, 1)
  mix = task.views['mix'](variables, test, rng, 10, classes=[3, 5]).pictures
  assert mix.shape == (2, 5, 28, 28, 1)
  with pytest.raises(ConfigError, match='classes 0..9'):
    task.views['sample'](variables, test, rng, 4, classes=[12]).pictures


def test_class_on_unconditional_model_is_refused(tmp_path):
  workdir = str(tmp_path / 'gan')
  loop.train_and_evaluate(tiny.gan(4), workdir)
  config, task, state = api.load_state(workdir)
  with pytest.raises(ConfigError, match='class-conditional'):
    task.views['sample'](
      task.inference_variables(state), {}, jax.random.PRNGKey(0), 4, classes=[1]
    ).pictures


def test_info_gan_learns_codes_and_draws_them_on_request(tmp_path):
  from genjax.writers.metrics import read_metrics  # pylint: disable=import-outside-toplevel

  workdir = str(tmp_path / 'info')
  loop.train_and_evaluate(tiny.info_gan(8), workdir)
  train_rows = [r for r in read_metrics(workdir) if r.get('split') == 'train']
  assert {'info_loss', 'code_accuracy'} <= set(train_rows[-1])
  config, task, state = api.load_state(workdir)
  variables = task.inference_variables(state)
  # The exported generator takes noise then the one-hot code.
  assert variables['params']['Dense_0']['kernel'].shape[0] == 8 + 10
  rng = jax.random.PRNGKey(0)
  test = datasets.load(config.data).test
  threes = task.views['sample'](variables, test, rng, 16, classes=[3]).pictures
  also_threes = task.views['sample'](variables, test, rng, 16, classes=[3]).pictures
  np.testing.assert_array_equal(threes, also_threes)
  fours = task.views['sample'](variables, test, rng, 16, classes=[4]).pictures
  assert threes.shape == (4, 4, 28, 28, 1) and not np.array_equal(threes, fours)
  mix = task.views['mix'](variables, test, rng, 10).pictures
  assert mix.shape == (2, 5, 28, 28, 1)
  with pytest.raises(ConfigError, match='codes 0..9'):
    task.views['sample'](variables, test, rng, 4, classes=[10]).pictures


def test_info_codes_on_a_conditional_model_are_refused(tmp_path):
  c = tiny.conditional_gan(4)
  c.model.num_codes = 10
  with pytest.raises(ConfigError, match='unconditional'):
    loop.train_and_evaluate(c, str(tmp_path / 'both'))


def test_image_quality_is_measured_during_training_when_the_classifier_exists(tmp_path):
  from genjax.writers.metrics import read_metrics  # pylint: disable=import-outside-toplevel

  classifier = str(tmp_path / 'classifier')
  loop.train_and_evaluate(tiny.classifier(4), classifier)
  c = tiny.gan(8, classifier_workdir=classifier)
  c.train.eval_every = 4
  c.eval.num_examples = 64
  loop.train_and_evaluate(c, str(tmp_path / 'gan'))
  rows = [r for r in read_metrics(tmp_path / 'gan') if r.get('split') == 'test']
  assert [r['step'] for r in rows] == [4, 8]
  assert {'fid', 'inception_score', 'precision', 'recall'} <= set(rows[0])


def test_self_conditioned_gan_trains_on_clusters_and_draws_them(tmp_path):
  workdir = str(tmp_path / 'clusters')
  loop.train_and_evaluate(tiny.self_conditioned_gan(4), workdir)
  saved = np.load(tmp_path / 'clusters' / 'clusters.npz')
  assert saved['centroids'].shape[0] == 8 and len(saved['labels']) == 256
  config, task, state = api.load_state(workdir)
  data = datasets.load(config.data, workdir=workdir)
  np.testing.assert_array_equal(data.train['cluster'], saved['labels'])
  variables = task.inference_variables(state)
  assert variables['params']['class_embed']['embedding'].shape[0] == 8
  rng = jax.random.PRNGKey(0)
  fives = task.views['sample'](variables, {}, rng, 16, classes=[5]).pictures
  sixes = task.views['sample'](variables, {}, rng, 16, classes=[6]).pictures
  assert fives.shape == (4, 4, 28, 28, 1) and not np.array_equal(fives, sixes)
  with pytest.raises(ConfigError, match='clusters 0..7'):
    task.views['sample'](variables, {}, rng, 4, classes=[8]).pictures


def test_clusters_with_class_labels_are_refused(tmp_path):
  c = tiny.conditional_gan(4)
  c.data.clusters = 8
  with pytest.raises(ConfigError, match='data.clusters=8 conditions the model'):
    loop.train_and_evaluate(c, str(tmp_path / 'both'))
