"""Multi-process training on loopback: 2 processes x 2 CPU devices == 1 process x 4 devices.

Each run is real `launch.main` processes (via `launch.local_cluster`), joined by
`jax.distributed` and all-reducing over gloo, on the tiny VAE: same config, seed and
global batch, so the losses must agree to float rounding. The 2-process run stops at
step 8 and is resumed to 12, so the comparison covers Orbax restore across processes too.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys

import pytest

from genjax.writers.metrics import read_metrics
from tests.conftest import REPO

TIMEOUT_S = 300
# A constant learning rate: with the cosine default, train.steps shapes the schedule, and
# a run resumed from 8 to 12 steps would not be the 12-step run it is compared with.
ARGS = (
  '--config=tests/tiny.py:vae',
  '--config.train.log_every=2',
  '--config.optim.schedule=constant',
)


def _gloo_available() -> bool:
  try:
    from jaxlib import _jax  # the compiled extension: gloo is built into the Linux/macOS wheels
  except ImportError:
    return False
  return hasattr(_jax, 'make_gloo_tcp_collectives')


pytestmark = pytest.mark.skipif(
  not _gloo_available(),
  reason='this jaxlib has no CPU collectives (gloo): multi-process CPU runs cannot all-reduce',
)


def _run(cmd: list[str], env: dict[str, str]) -> str:
  """Runs `cmd` in its own process group, so a hang ends with every process it started."""
  proc = subprocess.Popen(
    cmd,
    cwd=REPO,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
    start_new_session=True,
  )
  try:
    out, _ = proc.communicate(timeout=TIMEOUT_S)
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    raise AssertionError(f'{cmd} hung for {TIMEOUT_S} s:\n{out[-4000:]}') from None
  if proc.returncode != 0:
    raise AssertionError(f'{cmd} failed ({proc.returncode}):\n{out[-6000:]}')
  return out


def _cluster(workdir, processes: int, devices: int, steps: int, *extra: str) -> str:
  """`launch.main` in `processes` processes of `devices` CPU devices each (1: no
  jax.distributed)."""
  return _run(
    [
      sys.executable,
      '-m',
      'launch.local_cluster',
      f'--num_processes={processes}',
      f'--devices_per_process={devices}',
      '--',
      *ARGS,
      f'--workdir={workdir}',
      f'--config.train.steps={steps}',
      *extra,
    ],
    dict(os.environ),
  )


def _losses(workdir, split: str = 'train') -> dict[int, float]:
  rows = [r for r in read_metrics(workdir) if r['split'] == split]
  steps = [r['step'] for r in rows]
  assert len(steps) == len(set(steps)), f'{split} rows written more than once: {steps}'
  return {r['step']: r['loss'] for r in rows}


def test_two_processes_equal_one_and_resume(tmp_path):
  one, two = tmp_path / 'one_x4', tmp_path / 'two_x2'
  out = _cluster(one, processes=1, devices=4, steps=12)
  assert 'JAX process 0 of 1: 4 local of 4 global devices (cpu)' in out
  out = _cluster(two, processes=2, devices=2, steps=8)
  assert 'JAX process 0 of 2: 2 local of 4 global devices (cpu)' in out
  assert sorted(os.listdir(two / 'checkpoints')) == ['4', '8']

  # A resume, under 2 processes, with 2 steps per call: each process stacks its rows of
  # 2 batches, and the numbers stay those of one step per call.
  out = _cluster(two, 2, 2, 12, '--config.train.steps_per_call=2')
  assert 'Resumed from step 8' in out
  assert sorted(os.listdir(two / 'checkpoints'), key=int) == ['4', '8', '12']
  assert sorted(os.listdir(two / 'samples')) == ['step_00000008.png', 'step_00000012.png']

  for split in ('train', 'test'):
    expected, got = _losses(one, split), _losses(two, split)
    assert sorted(got) == sorted(expected), split  # every step once: one writer
    for step, loss in expected.items():
      assert math.isclose(got[step], loss, rel_tol=1e-5), (split, step, got[step], loss)
