"""genjax.load for research code, and the sample views of both families."""

import jax
import numpy as np
import pytest

import genjax
from genjax.data import datasets
from genjax.models import Autoencoder
from genjax import api
from genjax.run import loop
from tests import tiny
from tests.trees import assert_trees_close, assert_trees_equal


def test_load_gives_an_ordinary_flax_model(tmp_path):
  workdir = str(tmp_path / 'ae')
  trained = loop.train_and_evaluate(tiny.ae(steps=4), workdir)
  config, model, params = genjax.load(workdir)
  assert isinstance(model, Autoencoder) and config.train.steps == 4
  assert_trees_equal(params, trained.params)
  x = np.zeros((3, 28, 28, 1), np.float32)
  assert model.apply(params, x).shape == (3, 28, 28, 1)

  _, task, state = api.load_state(workdir)
  test = datasets.load(config.data).test
  denoise = task.views['denoise'](state.params, test, jax.random.PRNGKey(0), 16).pictures
  assert denoise.shape == (6, 8, 28, 28, 1)  # noisy / denoised / clean rows, twice
  assert 0.0 <= denoise.min() and denoise.max() <= 1.0


def test_vae_views(tmp_path):
  workdir = str(tmp_path / 'vae')
  loop.train_and_evaluate(tiny.vae(steps=4), workdir)
  config, task, state = api.load_state(workdir)
  test = datasets.load(config.data).test
  rng = jax.random.PRNGKey(0)
  assert task.views['sample'](state.params, test, rng, 16).pictures.shape == (4, 4, 28, 28, 1)
  walk = task.views['interpolate'](state.params, test, rng, 30).pictures
  assert walk.shape == (3, 10, 28, 28, 1)
  # The ends of each row are the two real test images being interpolated.
  np.testing.assert_allclose(walk[0, 0], test['image'][0] / 255.0)
  np.testing.assert_allclose(walk[0, -1], test['image'][1] / 255.0)


def test_averaging_the_last_checkpoints_is_the_mean_of_their_parameters(tmp_path):
  workdir = str(tmp_path / 'vae')
  config = tiny.vae(steps=8)  # checkpoints at 4 and 8
  config.train.ema_decay = 0.9
  loop.train_and_evaluate(config, workdir)
  _, _, at4 = api.load_state(workdir, step=4)
  _, _, at8 = api.load_state(workdir, step=8)
  _, task, mean = api.load_averaged_state(workdir, 2)
  expected = jax.tree.map(lambda a, b: (np.asarray(a) + np.asarray(b)) / 2, at4.params, at8.params)
  assert_trees_close(mean.params, expected, atol=1e-7)
  ema = jax.tree.map(
    lambda a, b: (np.asarray(a) + np.asarray(b)) / 2, at4.extra['ema'], at8.extra['ema']
  )
  assert_trees_close(mean.extra['ema'], ema, atol=1e-7)
  assert int(mean.step) == 8 and task.inference_variables(mean) is mean.extra['ema']
  with pytest.raises(FileNotFoundError, match='keeps 2'):
    api.load_averaged_state(workdir, 3)
