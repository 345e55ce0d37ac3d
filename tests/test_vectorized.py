"""launch.sweep --vectorize: vmapped points == the same points trained separately."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from genjax import tasks
from genjax.run import loop
from genjax.sweeps import state, vectorized
from genjax.writers.metrics import read_metrics
from tests import tiny
from tests.conftest import REPO
from tests.trees import assert_trees_equal

POINTS = [
  {'optim.learning_rate': 1e-3, 'seed': 0},
  {'optim.learning_rate': 3e-3, 'seed': 1},
  {'optim.learning_rate': 1e-2, 'seed': 0},
]


def _losses(workdir, split):
  return [(r['step'], r['loss']) for r in read_metrics(workdir) if r['split'] == split]


def test_grouping_keeps_shape_changes_apart():
  config = tiny.vae()
  points = [
    {'optim.learning_rate': 1e-3, 'model.latent_dim': 4},
    {'optim.learning_rate': 3e-3, 'model.latent_dim': 4, 'loss.kl_weight': 0.5},
    {'optim.learning_rate': 1e-3, 'model.latent_dim': 8, 'seed': 3},
  ]
  assert vectorized.group_points(config, points) == [[0, 1], [2]]
  # A loss field that does not trace becomes structural on the retry.
  assert vectorized.group_points(config, points, loss_traced=False) == [[0], [1], [2]]


def test_vectorized_equals_separate(tmp_path):
  base = tiny.vae()
  base.train.sample_every = 0
  dirs = [str(tmp_path / f'v{i}') for i in range(len(POINTS))]
  vectorized.train_vectorized(base, POINTS, dirs)
  # Separate runs as launch.main makes them, on one device: the vectorized group spreads
  # its 3 points over 3 of the tests' 4 fake devices, each point's batch whole on one
  # (split over devices, a batch is the same math with other float rounding).
  flags = re.sub(r'device_count=\d+', 'device_count=1', os.environ['XLA_FLAGS'])
  env = dict(os.environ, XLA_FLAGS=flags)  # the tests' other XLA flags kept: the same math
  script = (
    'import sys; from tests import tiny; from genjax.sweeps import vectorized; '
    'from genjax.run import loop; b = tiny.vae(); b.train.sample_every = 0\n'
    f'for i, p in enumerate({POINTS!r}):\n'
    f'  loop.train_and_evaluate(vectorized.apply_point(b, p), "{tmp_path}/s%d" % i)'
  )
  subprocess.run(
    [sys.executable, '-c', script], cwd=REPO, env=env, check=True, timeout=300, capture_output=True
  )
  for i in range(len(POINTS)):
    for split in ('train', 'test'):
      got, want = _losses(dirs[i], split), _losses(tmp_path / f's{i}', split)
      assert [s for s, _ in got] == [s for s, _ in want] == [4, 8]
      np.testing.assert_allclose([v for _, v in got], [v for _, v in want], rtol=1e-5)
  assert _losses(dirs[0], 'train') != _losses(dirs[2], 'train')  # the rate mattered
  proc = subprocess.run(
    [sys.executable, '-m', 'launch.evaluate', f'--workdir={dirs[1]}'],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]


def test_sweep_vectorize_end_to_end(mnist_data, tmp_path):
  sweep_dir = tmp_path / 'sw'
  proc = subprocess.run(
    [
      sys.executable,
      '-m',
      'launch.sweep',
      '--config=tests/tiny_sweep.py',
      f'--workdir={sweep_dir}',
      '--vectorize',
    ],
    cwd=REPO,
    env=dict(os.environ),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]  # the 1e30 point fails
  assert 'as 1 vectorized group(s)' in proc.stdout
  assert '3 points: 2 done, 1 failed' in proc.stdout
  for name in ('optim.learning_rate=0.001,seed=0', 'optim.learning_rate=0.003,seed=0'):
    assert state.read_status(sweep_dir / name)['status'] == 'done'
    assert [s for s, _ in _losses(sweep_dir / name, 'train')] == [4, 8]
  bad = state.read_status(sweep_dir / 'optim.learning_rate=1e+30,seed=0')
  assert 'NaN' in bad['error'][0]


def test_interrupted_group_resumes_to_the_uninterrupted_result(tmp_path):
  import shutil  # pylint: disable=import-outside-toplevel

  base = tiny.vae()  # 8 steps, a checkpoint every 4
  base.train.sample_every = 4
  whole = [str(tmp_path / f'whole{i}') for i in range(2)]
  resumed = [str(tmp_path / f'resumed{i}') for i in range(2)]
  want = vectorized.train_vectorized(base, POINTS[:2], whole)
  for wd in whole:  # each point's own sample grids, as a separate run draws them
    assert sorted(os.listdir(os.path.join(wd, 'samples'))) == [
      'step_00000004.png',
      'step_00000008.png',
    ]
  base.train.sample_every = 0
  vectorized.train_vectorized(base, POINTS[:2], resumed)
  for wd in resumed:  # as if stopped between the checkpoints at steps 4 and 8
    shutil.rmtree(os.path.join(wd, 'checkpoints', '8'))
  got = vectorized.train_vectorized(base, POINTS[:2], resumed)
  for g, w in zip(got, want):
    assert int(g.step) == 8
    assert_trees_equal(g.params, w.params)
  # Points stopped at different checkpoints cannot be stacked: a clear refusal.
  shutil.rmtree(os.path.join(resumed[0], 'checkpoints', '8'))
  shutil.rmtree(os.path.join(resumed[0], 'checkpoints', '4'))
  with pytest.raises(ValueError, match='no checkpoint step in common'):
    vectorized.train_vectorized(base, POINTS[:2], resumed)


def test_corpus_metrics_run_in_the_loop_and_in_vectorized_groups(tmp_path, monkeypatch):
  """A family's corpus-level metrics land in the test rows beside the per-example means,
  for one run and for each point of a group (with that point's own eval key)."""
  real_build = tasks.build

  def with_corpus_metrics(config, spec, runs=None):
    task = real_build(config, spec, runs)
    score = lambda variables, data, rng: {'corpus_score': float(jax.random.uniform(rng))}
    return dataclasses.replace(task, corpus_metrics=score)

  monkeypatch.setattr(tasks, 'build', with_corpus_metrics)
  base = tiny.vae(steps=4)
  base.train.sample_every = 0
  loop.train_and_evaluate(base, str(tmp_path / 'one'))
  points = [{'seed': 0}, {'seed': 1}]
  dirs = [str(tmp_path / f'p{i}') for i in range(2)]
  vectorized.train_vectorized(base, points, dirs)
  rows = {
    d: [r for r in read_metrics(d) if r['split'] == 'test'] for d in [str(tmp_path / 'one')] + dirs
  }
  for d, test_rows in rows.items():
    assert [r['step'] for r in test_rows] == [4] and {'loss', 'corpus_score'} <= set(test_rows[0])
  # Point 0 has the lone run's seed: the same eval key, the same score.
  assert rows[dirs[0]][0]['corpus_score'] == rows[str(tmp_path / 'one')][0]['corpus_score']
  assert rows[dirs[1]][0]['corpus_score'] != rows[dirs[0]][0]['corpus_score']
