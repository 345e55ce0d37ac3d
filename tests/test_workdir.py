"""The workdir as a user meets it: one trainer at a time, clear errors, nothing lost."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from genjax.run import workdir as workdir_lib
from genjax.writers.metrics import read_metrics
from tests.conftest import REPO


def _main(workdir, *flags):
  return [
    sys.executable,
    '-m',
    'launch.main',
    '--config=tests/tiny.py:vae',
    f'--workdir={workdir}',
    *flags,
  ]


def _run(args):
  return subprocess.run(
    args, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=600
  )


def test_a_second_trainer_on_a_live_workdir_refuses_and_the_first_carries_on(mnist_data, tmp_path):
  workdir = tmp_path / 'vae'
  # Far more steps than the test waits for: the first trainer holds the lock until told to
  # stop, however slow the machine, and then stops as a preempted job does.
  flags = (
    '--config.train.steps=1000000',
    '--config.train.log_every=20',
    '--config.train.eval_every=0',
    '--config.train.checkpoint_every=1000000',  # only the preemption's
    '--config.train.sample_every=0',
  )
  first = subprocess.Popen(
    _main(workdir, *flags),
    cwd=REPO,
    env=dict(os.environ),
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
  )
  try:
    deadline = time.time() + 300
    while not (workdir / 'metrics.jsonl').exists():  # training, lock held
      assert first.poll() is None and time.time() < deadline, first.stderr.read()[-2000:]
      time.sleep(0.2)
    began = time.time()
    second = _run(_main(workdir, *flags))
    assert second.returncode == 2 and 'Traceback' not in second.stderr
    assert f'pid {first.pid}' in second.stderr and 'another --workdir' in second.stderr
    assert time.time() - began < 60
    assert first.poll() is None  # still training
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    assert 'checkpoint saved' in first.stderr.read()
  finally:
    first.kill()
  steps = [r['step'] for r in read_metrics(workdir) if r['split'] == 'train']
  assert steps and steps == list(range(20, steps[-1] + 1, 20))  # each logged step once
  saved = [int(p.name) for p in (workdir / 'checkpoints').iterdir()]
  assert len(saved) == 1 and saved[0] >= steps[-1]  # the preemption's checkpoint only


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
  lock = tmp_path / workdir_lib.TRAIN_LOCK
  lock.write_text('pid 999999 on lost-node since 2026-01-01 00:00:00')
  with workdir_lib.training_lock(tmp_path):  # no live holder: taken, with a warning
    assert f'pid {os.getpid()}' in lock.read_text()
    with pytest.raises(workdir_lib.WorkdirBusyError, match=f'pid {os.getpid()}'):
      with workdir_lib.training_lock(tmp_path):
        pass
  assert lock.read_text() == ''


def test_nan_loss_is_one_clear_line(mnist_data, tmp_path):
  proc = _run(_main(tmp_path / 'vae', '--config.optim.learning_rate=1e30'))
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  assert 'NaN' in proc.stderr and 'learning_rate' in proc.stderr


def test_a_workdir_that_is_a_file_is_one_clear_line(tmp_path):
  (tmp_path / 'file').write_text('')
  proc = _run(_main(tmp_path / 'file'))
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr and 'is a file' in proc.stderr


def test_a_damaged_config_is_named_and_recoverable(mnist_data, tmp_path):
  workdir = tmp_path / 'vae'
  assert _run(_main(workdir, '--config.train.steps=4')).returncode == 0
  (workdir / 'config.json').write_text('{"seed": 0, "data": {')  # a write cut short
  for args in (
    _main(workdir, '--config.train.steps=8'),
    [sys.executable, '-m', 'launch.evaluate', f'--workdir={workdir}'],
    [sys.executable, '-m', 'launch.sample', f'--workdir={workdir}'],
  ):
    proc = _run(args)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert 'config.json is damaged' in proc.stderr and '--allow_config_change' in proc.stderr
  resumed = _run(_main(workdir, '--config.train.steps=8', '--allow_config_change'))
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert json.loads((workdir / 'config.json').read_text())['train']['steps'] == 8
  assert (workdir / 'config.json.1').exists()  # the damaged one, kept
