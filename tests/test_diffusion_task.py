"""The diffusion task beyond the step: guidance through its sampling path, training, the
views' shapes and options, the config combinations it refuses, launch.sample's flags."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import api, tasks
from genjax.config import ConfigError
from genjax.data import datasets
from genjax.run import loop, restore
from genjax.step import parallel
from genjax.tasks import diffusion_samplers as samplers
from genjax.tasks.diffusion_schedules import Schedule
from genjax.tasks.diffusion_views import Sampling, Settings
from genjax.writers.metrics import read_metrics
from tests import tiny
from tests.conftest import REPO
from tests.trees import assert_trees_equal


@pytest.fixture(scope='module')
def data():
  return datasets.load(tiny.diffusion().data)


def _jiggled(task, data, seed=0):
  """Initial variables with every parameter moved off its init: a U-Net starts at output
  0 whatever its label, where guidance would be no test."""
  batch = {k: jnp.asarray(v[:2]) for k, v in data.train.items()}
  batch['index'] = jnp.arange(2)
  variables, _ = task.init(jax.random.PRNGKey(seed), batch)
  leaves, tree = jax.tree.flatten(variables)
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
  moved = [p + 0.1 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)]
  return jax.tree.unflatten(tree, moved)


def test_guidance_zero_is_the_null_class_and_one_the_conditional_sample(data):
  c = tiny.diffusion()
  # v-prediction: its x0 estimate has no 1 / alpha_t, which near t = 1 would magnify the
  # rounding of a different batch size (the guided call's 2B) past any tolerance.
  c.diffusion.objective = 'v'
  c.sample.clip_x0 = False
  c.sample.guidance_interval = (0.0, 1.0)  # the view guides at every step, as `draw` does
  task = tasks.build(c, data.spec, restore.RUNS)
  variables = _jiggled(task, data)
  sampling = Sampling(task.model, 'v', Schedule('cosine'), 10, (28, 28, 1), clip_x0=False)
  rng, n = jax.random.PRNGKey(3), 4
  sevens = jnp.full((n,), 7, jnp.int32)
  draw = lambda labels, w: sampling.sample(variables, rng, labels, n, Settings(steps=3, guidance=w))
  null, cond = draw(None, 1.0).x, draw(sevens, 1.0).x
  guided_0, guided_3 = draw(sevens, 0.0).x, draw(sevens, 3.0).x
  assert float(jnp.max(jnp.abs(cond - null))) > 1e-2  # the label matters
  np.testing.assert_allclose(guided_0, null, atol=1e-4)
  assert float(jnp.max(jnp.abs(guided_3 - cond))) > 1e-2
  # Compiled for: no labels, labels, labels guided; w = 0 and w = 3 share the last.
  assert sampling._sample._cache_size() == 3
  # w = 1 is the plain conditional sample, as the pure sampler draws it.
  denoise = lambda z, t, y: task.model.apply(variables, z, t, y)
  plain = samplers.ddim_sample(denoise, rng, (n, 28, 28, 1), sevens, objective='v', steps=3)
  np.testing.assert_allclose(cond, plain.x, atol=1e-5)
  # The view draws the same: classes in, guidance by option.
  view = task.views['sample']
  pictures = view(variables, {}, rng, n, classes=[7], guidance=0.0, steps=3).pictures
  np.testing.assert_allclose(
    pictures.reshape(n, 28, 28, 1), np.clip((null + 1) / 2, 0, 1), atol=1e-4
  )


def test_samples_split_over_the_devices_and_equal_one_devices(data, monkeypatch):
  task = tasks.build(tiny.diffusion(), data.spec, restore.RUNS)
  # Weights restored onto one device, as a checkpoint may hand them over.
  variables = jax.device_put(_jiggled(task, data), jax.devices()[0])
  sampling = Sampling(task.model, 'v', Schedule('cosine'), 10, (28, 28, 1))
  rng, n = jax.random.PRNGKey(3), 8
  labels = jnp.arange(n, dtype=jnp.int32) % 10
  settings = Settings(steps=3, guidance=2.0)
  spread = sampling.sample(variables, rng, labels, n, settings).x
  assert len(jax.devices()) == 4 and spread.sharding.device_set == set(jax.devices())
  inverted = sampling.invert(variables, spread, labels, steps=3)
  assert inverted.sharding.device_set == set(jax.devices())
  monkeypatch.setattr(parallel, 'spread_batch', lambda x: x)
  monkeypatch.setattr(parallel, 'replicate_locally', lambda tree: tree)
  one = Sampling(task.model, 'v', Schedule('cosine'), 10, (28, 28, 1))
  alone = one.sample(variables, rng, labels, n, settings).x
  assert len(alone.sharding.device_set) == 1
  np.testing.assert_allclose(spread, alone, atol=1e-5)


def test_training_lowers_the_loss_and_views_draw_from_the_ema(tmp_path):
  workdir = str(tmp_path / 'diffusion')
  state = loop.train_and_evaluate(tiny.diffusion(steps=24, dropout=0.0), workdir)
  rows = read_metrics(workdir)
  train = [r['loss'] for r in rows if r['split'] == 'train']
  assert train[-1] < 0.8 * train[0], train
  assert [r['step'] for r in rows if r['split'] == 'test'][-1] == 24
  config, task, restored = api.load_state(workdir)
  variables = task.inference_variables(restored)
  assert_trees_equal(variables, state.extra['ema'])  # views and evaluation use the EMA
  test = datasets.load(config.data).test
  rng = jax.random.PRNGKey(0)
  shapes = {
    'sample': ((16,), {'classes': [7]}, (4, 4, 28, 28, 1)),
    'interpolate': ((20,), {'classes': [3]}, (2, 10, 28, 28, 1)),
    'inpaint': ((8,), {}, (3, 8, 28, 28, 1)),
    'trajectory': ((20,), {'steps': 4, 'sampler': 'heun'}, (4, 5, 28, 28, 1)),
  }
  for mode, (args, options, shape) in shapes.items():
    drawn = task.views[mode](variables, test, rng, *args, **options).pictures
    assert drawn.shape == shape, mode
    assert np.all((drawn >= 0) & (drawn <= 1)), mode
  # The inpainted rows keep the known (left) half of the originals.
  inpainted = task.views['inpaint'](variables, test, rng, 8).pictures
  np.testing.assert_allclose(inpainted[1, :, :, :14], inpainted[2, :, :, :14], atol=2e-2)
  with pytest.raises(ConfigError, match='classes 0..9'):
    task.views['sample'](variables, test, rng, 4, classes=[10])
  with pytest.raises(ConfigError, match='--guidance needs --class'):
    task.views['inpaint'](variables, test, rng, 4, guidance=2.0)
  with pytest.raises(ConfigError, match='deterministic ODE'):
    task.views['sample'](variables, test, rng, 4, sampler='euler', eta=0.5)
  # launch.sample's flags reach the views that take them.
  proc = subprocess.run(
    [
      sys.executable,
      '-m',
      'launch.sample',
      f'--workdir={workdir}',
      '--mode=trajectory',
      '--num=10',
      '--steps=3',
      '--sampler=euler',
      '--guidance=2',
      '--class=5',
      f'--out={tmp_path / "trajectory"}',
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (tmp_path / 'trajectory.png').stat().st_size > 0
  # launch.evaluate scores a stated sampler and step count (--sample=FIELD=VALUE).
  evaluate = [sys.executable, '-m', 'launch.evaluate', f'--workdir={workdir}']
  run = lambda *flags: subprocess.run(
    [*evaluate, *flags], cwd=REPO, capture_output=True, text=True, timeout=300
  )
  interval = ('--sample=guidance=2', '--sample=guidance_interval=0.2,0.8')
  proc = run('--sample=steps=3', '--sample=sampler=euler', *interval)
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads(open(f'{workdir}/eval.json').read())
  assert (results['sampler'], results['steps']) == ('euler', 3)
  assert (results['guidance'], results['guidance_interval']) == (2.0, [0.2, 0.8])
  assert results['sampling_seconds_4'] > 0  # eval.timed_samples of tiny.diffusion
  proc = run('--sample=stepz=3')
  assert proc.returncode == 2 and "FIELD one of ['clip_x0'" in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize(
  'overrides,message',
  [
    ({'model.num_classes': 0, 'sample.guidance': 2.0}, 'needs a class-conditional model'),
    ({'model.label_dropout': 0.0, 'sample.guidance': 2.0}, 'never trained the null class'),
    ({'sample.sampler': 'heun', 'sample.eta': 0.5}, "sample.sampler='ddim' to choose eta"),
    ({'sample.sampler': 'ddpm', 'sample.eta': 0.5}, 'eta = 1 by definition'),
    ({'sample.sampler': 'dpm'}, "'ddim' \\(with sample.eta\\)"),
    ({'diffusion.objective': 'flow', 'eval.bits_per_dim': True}, 'variance-preserving'),
    ({'diffusion.objective': 'score'}, "not one of \\('eps', 'v', 'vdm', 'flow'\\)"),
    ({'diffusion.schedule': 'sigmoid'}, 'diffusion.schedule'),
    ({'diffusion.logsnr_max': -20.0}, 'must exceed logsnr_min'),
    ({'model.num_classes': 5}, 'has 10 classes; set model.num_classes=10'),
    ({'model.attention_resolutions': (8,)}, 'choose among \\(14,\\)'),
    ({'model.num_heads': 3}, 'num_heads=3'),
    ({'sample.inpaint_mask': 'left'}, "'right', 'centre'"),
    ({'sample.guidance_interval': (0.8, 0.2)}, '0 <= lo < hi <= 1'),
  ],
)
def test_bad_combinations_are_config_errors_that_say_what_to_do(data, overrides, message):
  c = tiny.diffusion()
  for field, value in overrides.items():
    section, name = field.split('.')
    c[section][name] = value
  with pytest.raises(ConfigError, match=message):
    tasks.build(c, data.spec, restore.RUNS)
