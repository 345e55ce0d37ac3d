"""The language-model family end to end: train, stream samples, evaluate, bad prompts
(one trained workdir serves every entry point)."""

import json
import os
import subprocess
import sys

import jax
import numpy as np

from genjax import tasks
from genjax.data import datasets
from genjax.run import restore
from genjax.tasks import lm
from tests import tiny
from tests.conftest import REPO
from tests.test_launch import _run


def test_dropout_is_per_example_and_off_in_evaluation():
  config = tiny.lm(dropout=0.5)
  data = datasets.load(config.data)
  task = tasks.build(config, data.spec, restore.RUNS)
  batch = data.train_source(8, 0).batch(0)
  params, _ = task.init(jax.random.PRNGKey(0), batch)
  rng = jax.random.PRNGKey(1)
  full = lm.token_losses(
    task.model, params, batch['tokens'], train=True, rng=rng, index=batch['index']
  )
  # Row i's dropout mask depends on its global index only, not on its batch neighbours.
  half = {k: v[4:] for k, v in batch.items()}
  part = lm.token_losses(
    task.model, params, half['tokens'], train=True, rng=rng, index=half['index']
  )
  np.testing.assert_allclose(full[4:], part, rtol=1e-6)
  evaluation = lm.token_losses(task.model, params, batch['tokens'])
  assert not np.allclose(full, evaluation)  # dropout on in training only


def test_train_writes_text_samples_then_sample_and_evaluate(tmp_path):
  workdir = tmp_path / 'lm'
  proc = _run('launch.main', '--config=tests/tiny.py:lm', f'--workdir={workdir}')
  assert 'steps/s' in proc.stderr
  assert (workdir / 'tokenizer' / 'vocab.json').exists()
  sample = (workdir / 'samples' / 'step_00000008.txt').read_text()
  assert len(sample) >= 20  # sample.max_new_tokens characters

  out = _run(
    'launch.sample', f'--workdir={workdir}', '--prompt=ROMEO:', '--max_new_tokens=30', '--seed=3'
  ).stdout
  assert out.startswith('ROMEO:') and len(out.rstrip('\n')) >= len('ROMEO:') + 30
  again = _run(
    'launch.sample', f'--workdir={workdir}', '--prompt=ROMEO:', '--max_new_tokens=30', '--seed=3'
  ).stdout
  assert again == out  # a seed reproduces the sample
  several = _run(
    'launch.sample',
    f'--workdir={workdir}',
    '--prompt=A',
    '--num_samples=3',
    '--max_new_tokens=10',
    '--top_p=0.9',
  ).stdout
  assert several.count('-' * 40) == 3

  bad = _run('launch.sample', f'--workdir={workdir}', '--prompt=caf\u00e9 \u263a', expect_ok=False)
  assert bad.returncode == 2 and 'Traceback' not in bad.stderr
  assert "'\u263a'" in bad.stderr and 'vocabulary' in bad.stderr
  assert bad.stdout == ''  # nothing printed before the error

  _run('launch.evaluate', f'--workdir={workdir}')
  results = json.loads((workdir / 'eval.json').read_text())
  assert results['step'] == 8
  np.testing.assert_allclose(results['bits_per_char'], results['loss'] / np.log(2))
  assert 2.0 < results['loss'] < np.log(80)  # about uniform over ~60 characters at step 8

  # The interactive prompt keeps going after a bad line.
  proc = subprocess.run(
    [sys.executable, '-m', 'launch.sample', f'--workdir={workdir}', '--interactive']
    + ['--max_new_tokens=5'],
    input='ROMEO:\nbad \u263a\nJULIET:\n/quit\n',
    cwd=REPO,
    env=dict(os.environ),
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'ROMEO:' in proc.stdout and 'JULIET:' in proc.stdout
  assert 'error:' in proc.stdout and "'\u263a'" in proc.stdout


def test_code_model_reports_parse_rate(tmp_path):
  workdir = tmp_path / 'code'
  _run('launch.main', '--config=tests/tiny.py:code_lm', f'--workdir={workdir}')
  assert (workdir / 'tokenizer' / 'spm.model').exists()
  _run('launch.evaluate', f'--workdir={workdir}')
  results = json.loads((workdir / 'eval.json').read_text())
  assert results['parse_headers'] == 2
  assert results['parse_rate'] * 2 in (0.0, 1.0, 2.0)  # a share of the 2 headers
  assert results['perplexity'] == np.exp(results['loss'])
  # Any text the model emits decodes; a unicode prompt is byte-encoded, not an error.
  out = _run(
    'launch.sample', f'--workdir={workdir}', '--prompt=def caf\u00e9():', '--max_new_tokens=8'
  ).stdout
  assert out.startswith('def caf\u00e9():')
