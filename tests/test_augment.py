"""GAN data augmentation of the classifier: a frozen class-conditional generator replaces
a share of each batch, the same way on every device layout; wrong generators are refused."""

import json
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments import mnist_augment
from genjax import config as config_lib, tasks
from genjax.config import ConfigError
from genjax.data import datasets
from genjax.data.spec import DataSpec, Feature
from genjax.run import loop, restore, workdir as workdir_lib
from genjax.writers import metrics as metrics_lib
from tests import tiny
from tests.conftest import REPO
from tests.test_parallel import step_metrics

SPEC = DataSpec({'image': Feature((28, 28, 1), 'uint8'), 'label': Feature((), 'int32', 10)})


@pytest.fixture(scope='module')
def cgan_workdir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('augment') / 'cgan')
  loop.train_and_evaluate(tiny.conditional_gan(steps=4), workdir)
  return workdir


def _loss(config, n=64, seed=0):
  """(loss, metrics) of a freshly initialised classifier on the first n train images."""
  data = datasets.load(config.data)
  task = tasks.build(config, data.spec, restore.RUNS)
  batch = data.train_source(n, 0).example()
  params, _ = task.init(jax.random.PRNGKey(0), batch)
  loss, metrics = jax.jit(task.loss)(params, batch, jax.random.PRNGKey(seed))
  return float(loss), jax.device_get(metrics)


def test_augmented_training_replaces_the_configured_share(cgan_workdir, tmp_path):
  workdir = str(tmp_path / 'clf')
  loop.train_and_evaluate(tiny.classifier_augmented(cgan_workdir, fraction=0.5), workdir)
  train = [r for r in metrics_lib.read_metrics(workdir) if r['split'] == 'train']
  assert train and all(np.isfinite(r['loss']) for r in train)
  share = np.mean([r['synthetic_fraction'] for r in train])  # 8 steps x 32 draws
  assert abs(share - 0.5) < 0.15
  # Everything replaced: the batch is all generated, with the generated classes.
  _, metrics = _loss(tiny.classifier_augmented(cgan_workdir, fraction=1.0))
  assert metrics['synthetic_fraction'] == 1.0


def test_fraction_zero_or_no_generator_is_the_plain_classifier(cgan_workdir):
  plain_loss, plain_metrics = _loss(tiny.classifier())
  for config in (
    tiny.classifier_augmented(cgan_workdir, fraction=0.0),
    tiny.classifier_augmented('', fraction=0.5),
  ):
    loss, metrics = _loss(config)
    assert loss == plain_loss
    assert metrics == plain_metrics  # no synthetic_fraction either
  loss, metrics = _loss(tiny.classifier_augmented(cgan_workdir, fraction=0.5))
  assert loss != plain_loss and 0.0 < metrics['synthetic_fraction'] < 1.0


def _run(config, strategy, steps=3):
  return step_metrics(config, strategy, jax.devices(), steps, ('loss', 'synthetic_fraction'))


def test_pmap_and_jit_draw_the_same_synthetic_batch(cgan_workdir):
  assert jax.device_count() == 4
  config = tiny.classifier_augmented(cgan_workdir, fraction=0.5)
  jit, pmap = _run(config, 'jit'), _run(config, 'pmap')
  assert np.all(np.isfinite(jit))
  np.testing.assert_allclose(pmap, jit, rtol=1e-5)


def test_unsuitable_generators_are_refused(cgan_workdir, tmp_path):
  def config_only(name, config):  # a workdir with only the config: checked before loading
    workdir = str(tmp_path / name)
    workdir_lib.check_or_write_config(config, workdir)
    return workdir

  build = lambda workdir, **kw: tasks.build(
    tiny.classifier_augmented(workdir, **kw), SPEC, restore.RUNS
  )
  with pytest.raises(ConfigError, match='(?s)unconditional.*mnist_cdcgan.py'):
    build(config_only('gan', tiny.gan()))
  with pytest.raises(ConfigError, match='(?s)self-conditioned on k-means clusters.*mnist_cdcgan'):
    build(config_only('clusters', tiny.self_conditioned_gan()))
  five = tiny.conditional_gan()
  five.model.generator.num_classes = five.model.discriminator.num_classes = 5
  with pytest.raises(ConfigError, match='conditional on 5 classes'):
    build(config_only('gan5', five))
  with pytest.raises(ConfigError, match='not a GAN'):
    build(config_only('clf', tiny.classifier()))
  fashion = tiny.conditional_gan()
  fashion.data.name = 'fashion-mnist'
  with pytest.raises(ConfigError, match='same dataset'):
    build(config_only('fashion', fashion))
  missing = str(tmp_path / 'nothing')
  with pytest.raises(
    FileNotFoundError, match=re.escape(f'--config=experiments/mnist_cdcgan.py --workdir={missing}')
  ):
    build(missing)
  with pytest.raises(FileNotFoundError, match='(?s)No checkpoint.*mnist_cdcgan.py'):
    build(config_only('untrained', tiny.conditional_gan()))
  with pytest.raises(ConfigError, match=r'fraction must be in \[0, 1\]'):
    build(cgan_workdir, fraction=1.5)


def test_experiment_variants():
  real, gan = mnist_augment.get_config('real'), mnist_augment.get_config('gan')
  for c in (real, gan):
    config_lib.validate(c)
    assert c.data.num_train == 1_000 and c.data.num_test == 0
  assert real.augment.generator_workdir == ''
  assert gan.augment.generator_workdir == 'runs/mnist_cdcgan' and 0 < gan.augment.fraction < 1
  with pytest.raises(ValueError, match="'real', 'gan'"):
    mnist_augment.get_config('fake')


def test_bench_augmentation_trains_both_variants_and_writes_its_table(cgan_workdir, tmp_path):
  """The command bench.results runs for the mnist_augment record, end to end (2 steps)."""
  done = subprocess.run(
    [
      sys.executable,
      '-m',
      'bench.augmentation',
      f'--workdir={tmp_path}',
      f'--generator_workdir={cgan_workdir}',
      '--steps=2',
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  with open(tmp_path / 'results.json') as f:
    variants = json.load(f)['variants']
  assert set(variants) == {'real', 'gan'}
  assert variants['real']['synthetic_fraction'] == 0.0
  assert variants['gan']['synthetic_fraction'] == mnist_augment.FRACTION
  assert all(v['steps'] == 2 and v['test_examples'] == 10_000 for v in variants.values())
  assert '| gan | 1,000 |' in done.stdout
