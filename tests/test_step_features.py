"""The generic step features (EMA weights, gradient accumulation) and the config schema."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from PIL import Image

import genjax
from genjax import tasks
from genjax.config import ConfigError
from genjax.data import datasets
from genjax.run import loop
from genjax.step import state as state_lib, train_step
from genjax.sweeps import vectorized
from tests import tiny
from tests.trees import assert_trees_close, assert_trees_equal


def test_ema_follows_its_closed_form():
  """A 'step' that adds 1 to a scalar parameter: after t steps p = t, and the warmed-up
  EMA is e_{t+1} = d_t e_t + (1 - d_t) p_{t+1}, d_t = min(decay, (1 + t) / (10 + t))."""
  decay = 0.9

  def plus_one(state, batch, *, axis_name):
    del batch, axis_name
    return state.replace(step=state.step + 1, params=state.params + 1.0), {}

  step = jax.jit(lambda s: train_step.with_ema(plus_one, decay)(s, {}, axis_name=None))
  state = state_lib.TrainState(
    step=jnp.zeros((), jnp.int32),
    params=jnp.float32(0.0),
    opt_state=(),
    rng=jax.random.PRNGKey(0),
    extra={'ema': jnp.float32(0.0)},
  )
  expected = 0.0
  for t in range(40):
    state, _ = step(state)
    d = min(decay, (1 + t) / (10 + t))
    expected = d * expected + (1 - d) * (t + 1)
    np.testing.assert_allclose(float(state.extra['ema']), expected, rtol=1e-6)
  assert float(state.params) == 40.0 and float(state.extra['ema']) < 40.0


def test_ema_weights_are_what_load_gives(tmp_path):
  c = tiny.vae(steps=4)
  c.train.ema_decay = 0.9
  state = loop.train_and_evaluate(c, str(tmp_path / 'vae'))
  _, _, variables = genjax.load(str(tmp_path / 'vae'))
  assert_trees_equal(variables, state.extra['ema'])
  with pytest.raises(AssertionError):  # the EMA is not the raw parameters
    assert_trees_close(state.extra['ema'], state.params)


@pytest.mark.parametrize('strategy', ['jit', 'pmap'])
def test_gradient_accumulation_equals_the_combined_batch(tmp_path, strategy):
  """Dropout on, so each example's noise must come from its own key for this to hold."""
  runs = {}
  for accum in (1, 2):
    c = tiny.lm(steps=3, dropout=0.1)
    c.train.steps_per_call = 1
    c.train.grad_accum_steps = accum
    c.parallel.strategy = strategy
    runs[accum] = loop.train_and_evaluate(c, str(tmp_path / f'accum{accum}'))
  assert_trees_close(runs[1].params, runs[2].params, rtol=2e-5, atol=1e-6)


def test_a_family_with_its_own_step_refuses_accumulation(tmp_path):
  c = tiny.gan(steps=2)
  c.train.grad_accum_steps = 2
  with pytest.raises(ConfigError, match='grad_accum_steps'):
    loop.train_and_evaluate(c, str(tmp_path / 'gan'))
  assert not (tmp_path / 'gan').exists()


def test_accumulation_must_divide_the_device_batch(tmp_path):
  c = tiny.vae(steps=4)
  c.train.grad_accum_steps = 3  # 32 examples over 4 devices: 8 each
  with pytest.raises(ConfigError, match='grad_accum_steps=3'):
    loop.train_and_evaluate(c, str(tmp_path / 'vae'))


def test_a_mistyped_family_field_is_refused_before_anything_is_written(tmp_path):
  c = tiny.vae(steps=4)
  with c.unlocked():
    c.model.latnet_dim = 4
  with pytest.raises(ConfigError, match=r"model\.latnet_dim"):
    loop.train_and_evaluate(c, str(tmp_path / 'vae'))
  assert not (tmp_path / 'vae').exists()
  # An experiment file cannot add one either: the config it starts from is locked.
  with pytest.raises((AttributeError, KeyError)):
    tasks.experiment_config('vae', 'mnist').model.latnet_dim = 4


def test_every_family_declares_its_fields():
  datasets_of = {
    'lm': ('tinyshakespeare',),
    'seq2seq': ('multi30k', 'stdlib_docstrings'),
    'chat': ('chitchat',),
    'piano_roll': ('jsb_chorales',),
    'voices': ('jsb_voices',),
  }
  for task in tasks.FAMILIES:
    for dataset in datasets_of.get(task, ('mnist', 'fruits')):
      c = tasks.experiment_config(task, dataset)
      assert isinstance(c, ml_collections.ConfigDict) and c.task == task
      tasks.check_fields(c)


@pytest.mark.parametrize('task', ['piano_roll', 'voices'])
def test_a_music_family_on_other_data_is_a_clear_error(task):
  with pytest.raises(ConfigError, match='jsb_'):
    tasks.experiment_config(task, 'mnist')


def _vae_on_a_folder():
  c = tiny.vae(steps=4)
  c.data.binarize = False
  c.model.likelihood = 'discretized_gaussian'
  return c


def _diffusion_on_a_folder():
  c = tiny.diffusion(steps=4)
  c.model.num_classes = 0  # a folder of pictures has no labels: nothing to guide by
  c.sample.guidance = 1.0
  return c


@pytest.mark.parametrize('make_config', [_vae_on_a_folder, _diffusion_on_a_folder])
def test_an_image_family_trains_on_an_image_folder(tmp_path, make_config):
  folder = tmp_path / 'photos'
  folder.mkdir()
  rng = np.random.default_rng(0)
  for i in range(12):  # mixed sizes and formats
    pixels = rng.integers(0, 255, (16 + 2 * i, 20 + 3 * i, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / (f'{i}.png' if i % 2 else f'{i}.jpg'))
  c = make_config()
  c.data.name = 'images'
  c.data.path = str(folder / '*')
  c.data.image_size = 16
  c.data.num_train = 0
  c.data.num_test = 0
  c.data.batch_size = 4
  c.eval.batch_size = 4
  c.data.dir = str(tmp_path / 'data')
  state = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  assert int(state.step) == 4
  config, _, variables = genjax.load(str(tmp_path / 'run'))
  assert config.data.name == 'images' and jax.tree.leaves(variables)
  assert tuple(datasets.load(config.data).spec.image_shape()) == (16, 16, 3)
  assert list((tmp_path / 'data' / 'images-cache').glob('*.npz'))


def test_ema_and_accumulation_under_several_steps_per_call_and_vectorized(tmp_path):
  """The features live inside the step, so a scan of steps and a vmap of points keep them."""

  def config(accum, per_call):
    c = tiny.vae(steps=4)
    c.train.sample_every = 0
    c.train.ema_decay = 0.9
    c.train.grad_accum_steps = accum
    c.train.steps_per_call = per_call
    return c

  plain = loop.train_and_evaluate(config(1, 1), str(tmp_path / 'plain'))
  scanned = loop.train_and_evaluate(config(2, 2), str(tmp_path / 'scanned'))
  (vmapped,) = vectorized.train_vectorized(config(2, 1), [{'seed': 0}], [str(tmp_path / 'vm')])
  for other in (scanned, vmapped):
    for tree in ('params', 'extra'):
      jax.tree.map(
        lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6),
        getattr(plain, tree),
        getattr(other, tree),
      )
