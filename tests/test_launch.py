"""Every entry point end to end on a tiny config, as a user runs it (subprocesses)."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

import genjax
from genjax.data import datasets
from genjax.evaluation.auroc import auroc
from tests.conftest import REPO


def _run(*args, expect_ok=True):
  env = dict(os.environ)
  proc = subprocess.run(
    [sys.executable, '-m', *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
  )
  if expect_ok and proc.returncode != 0:
    raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stderr[-4000:]}')
  return proc


@pytest.mark.parametrize(
  'override,message',
  [
    ('--config.optim.learning_rat=0.1', 'learning_rat'),
    ('--config.train.steps=many', 'steps'),
    ('--config.model.latnet_dim=4', 'latnet_dim'),  # a family's field, mistyped
  ],
)
def test_bad_override_fails_before_writing(tmp_path, override, message):
  workdir = tmp_path / 'run'
  proc = _run(
    'launch.main', '--config=tests/tiny.py:vae', f'--workdir={workdir}', override, expect_ok=False
  )
  assert proc.returncode != 0
  assert message in proc.stderr
  assert 'Traceback' not in proc.stderr
  assert not workdir.exists()


def test_missing_data_is_one_clear_message(tmp_path):
  proc = _run(
    'launch.main',
    '--config=tests/tiny.py:vae',
    f'--workdir={tmp_path / "run"}',
    f'--config.data.dir={tmp_path / "empty"}',
    expect_ok=False,
  )
  assert proc.returncode == 2
  assert 'train-images-idx3-ubyte.gz' in proc.stderr and 'Traceback' not in proc.stderr
  assert not (tmp_path / 'run').exists()


def test_vae_train_sample_evaluate(tmp_path):
  workdir = tmp_path / 'vae'
  proc = _run(
    'launch.main',
    '--config=tests/tiny.py:vae',
    f'--workdir={workdir}',
    '--config.parallel.strategy=pmap',
  )
  assert 'steps/s' in proc.stderr and 'ETA' in proc.stderr
  for mode in ('sample', 'reconstruct', 'interpolate'):
    out = _run('launch.sample', f'--workdir={workdir}', f'--mode={mode}', '--num=20')
    png = out.stdout.strip().splitlines()[-1]
    assert Image.open(png).size[0] > 28
  refused = _run('launch.sample', f'--workdir={workdir}', '--mode=denoise', expect_ok=False)
  assert refused.returncode == 2 and 'interpolate' in refused.stderr
  unwanted = ('--class=3', '--prompt=hello', '--interactive')  # not options of a VAE view
  refused = _run('launch.sample', f'--workdir={workdir}', *unwanted, expect_ok=False)
  assert refused.returncode == 2 and 'Traceback' not in refused.stderr, refused.stderr
  assert '--class, --prompt, --interactive: ' in refused.stderr  # all named in one message
  _run('launch.evaluate', f'--workdir={workdir}', '--eval=iwae_samples=6')
  results = json.loads((workdir / 'eval.json').read_text())
  assert results['step'] == 8 and results['iwae_samples'] == 6
  refused = _run('launch.evaluate', f'--workdir={workdir}', '--eval=iwae_sample=6', expect_ok=False)
  assert refused.returncode == 2 and 'iwae_samples' in refused.stderr
  assert 0 < results['nll'] <= -results['elbo'] + 1e-3  # IWAE bound is tighter than the ELBO


def test_ae_train_sample_evaluate_with_fruits_anomalies(tmp_path):
  workdir = tmp_path / 'ae'
  _run('launch.main', '--config=tests/tiny.py:fruits_ae', f'--workdir={workdir}')
  _run('launch.sample', f'--workdir={workdir}', '--mode=reconstruct', '--num=16')
  _run('launch.evaluate', f'--workdir={workdir}')
  results = json.loads((workdir / 'eval.json').read_text())
  assert {'mse', 'psnr', 'pca_mse', 'anomaly_auroc'} <= set(results)
  # The same AUROC from the loaded model, scored here: reconstruction error of normal
  # test images against blue apples.
  config, model, variables = genjax.load(str(workdir))
  data = datasets.load(config.data)

  def errors(images):
    x = np.asarray(images, np.float32) / 255.0
    recon = np.asarray(jax.nn.sigmoid(model.apply(variables, x)))
    return ((recon - x) ** 2).reshape(len(x), -1).mean(-1)

  normal, odd = errors(data.normal_test['image']), errors(data.anomaly['image'])
  labels = np.concatenate([np.zeros(len(normal)), np.ones(len(odd))])
  expected = auroc(labels, np.concatenate([normal, odd]))
  np.testing.assert_allclose(results['anomaly_auroc'], expected, rtol=1e-6)


def test_gan_train_sample_evaluate_with_classifier(tmp_path):
  classifier = tmp_path / 'classifier'
  gan = tmp_path / 'gan'
  _run(
    'launch.main',
    '--config=tests/tiny.py:gan',
    f'--workdir={gan}',
    '--config.parallel.strategy=pmap',
  )
  assert (gan / 'samples' / 'step_00000008.png').exists()
  refused = _run('launch.evaluate', f'--workdir={gan}', expect_ok=False)
  assert refused.returncode == 2 and 'mnist_classifier.py' in refused.stderr
  refused = _run('launch.sample', f'--workdir={gan}', '--class=3', expect_ok=False)
  assert refused.returncode == 2 and 'not conditional' in refused.stderr
  for mode in ('sample', 'interpolate', 'mix'):
    _run('launch.sample', f'--workdir={gan}', f'--mode={mode}', '--num=20')
  _run('launch.main', '--config=tests/tiny.py:classifier', f'--workdir={classifier}')
  _run('launch.evaluate', f'--workdir={classifier}')
  # The reported accuracy is the loaded model's, counted here over the whole test set.
  config, model, variables = genjax.load(str(classifier))
  test = datasets.load(config.data).test
  logits = model.apply(variables, np.asarray(test['image'], np.float32) / 255.0)
  right = np.mean(np.argmax(np.asarray(logits), -1) == test['label'])
  assert json.loads((classifier / 'eval.json').read_text())['accuracy'] == pytest.approx(right)
  # The classifier named at evaluation time, as the refusal above tells the user.
  _run('launch.evaluate', f'--workdir={gan}', f'--eval=classifier_workdir={classifier}')
  results = json.loads((gan / 'eval.json').read_text())
  assert {
    'fid',
    'fid_train_vs_test',
    'inception_score',
    'inception_score_test',
    'precision',
    'recall',
    'class_shares',
  } <= set(results)
  assert abs(sum(results['class_shares']) - 1.0) < 1e-6


def test_cpu_runs_get_one_device_per_core_unless_told(monkeypatch):
  from launch import common  # pylint: disable=import-outside-toplevel

  monkeypatch.setattr(os, 'cpu_count', lambda: 4)
  monkeypatch.setenv('XLA_FLAGS', '--xla_cpu_use_thunk_runtime=true')
  said = common.cpu_devices_per_core(global_batch=64)
  assert os.environ['XLA_FLAGS'].endswith('--xla_force_host_platform_device_count=4')
  assert 'one per core' in said and 'largest' not in said
  monkeypatch.setenv('XLA_FLAGS', '')
  said = common.cpu_devices_per_core(global_batch=30)  # 30 splits over 3, not 4
  assert os.environ['XLA_FLAGS'] == '--xla_force_host_platform_device_count=3'
  assert 'largest count that divides the batch of 30 into at most 4' in said
  assert common.cpu_devices_per_core(global_batch=64) is None  # the user's (or our) count
  assert os.environ['XLA_FLAGS'] == '--xla_force_host_platform_device_count=3'
  # An experiment that asks for a count (config.parallel.cpu_devices) gets it.
  monkeypatch.setenv('XLA_FLAGS', '')
  said = common.cpu_devices_per_core(global_batch=64, wanted=1)
  assert os.environ['XLA_FLAGS'] == '--xla_force_host_platform_device_count=1'
  assert 'as config.parallel.cpu_devices asks' in said
  # launch.evaluate and launch.sample have no step batch: one device per core, and no
  # config field to name in the hint.
  monkeypatch.setenv('XLA_FLAGS', '')
  said = common.cpu_devices_per_core(None)
  assert os.environ['XLA_FLAGS'] == '--xla_force_host_platform_device_count=4'
  assert 'one per core' in said and '--config' not in said
