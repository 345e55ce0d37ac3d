"""Sweeps: the point helpers, names, checks, state files, summaries, and launch.sweep end
to end (local processes and submitit's local executor) on tests/tiny_sweep.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from genjax.config import ConfigError
from genjax.sweeps import local, slurm, spec, state, summary
from genjax.sweeps.spec import (
  chain,
  choice,
  combine,
  log_uniform,
  product,
  random_points,
  run_name,
  uniform,
  zip_axes,
)
from tests import tiny
from tests.conftest import REPO

LR = 'optim.learning_rate'


# --- building points ------------------------------------------------------------------


def test_product_zip_chain_combine():
  grid = product(a=[1, 2], b=['x', 'y', 'z'])
  assert len(grid) == 6 and grid[0] == {'a': 1, 'b': 'x'} and grid[1] == {'a': 1, 'b': 'y'}
  assert zip_axes(a=[1, 2], b=[3, 4]) == [{'a': 1, 'b': 3}, {'a': 2, 'b': 4}]
  assert chain(zip_axes(a=[1]), [{'a': 5}]) == [{'a': 1}, {'a': 5}]
  both = combine(zip_axes(a=[1, 2]), product(seed=[0, 1]))
  assert both == [
    {'a': 1, 'seed': 0},
    {'a': 1, 'seed': 1},
    {'a': 2, 'seed': 0},
    {'a': 2, 'seed': 1},
  ]
  with pytest.raises(ConfigError, match='one length'):
    zip_axes(a=[1, 2], b=[3])
  with pytest.raises(ConfigError, match='list of values'):
    product(a='adam')
  with pytest.raises(ConfigError, match='no values'):
    product(a=[])
  with pytest.raises(ConfigError, match='both sweeps set'):
    combine([{'a': 1}], [{'a': 2}])


def test_random_points_are_seeded_and_in_range():
  dists = {
    LR: log_uniform(1e-5, 1e-2),
    'optim.b1': uniform(0.8, 0.99),
    'optim.name': choice(['adam', 'adamw']),
  }
  first, again = random_points(50, seed=3, **dists), random_points(50, seed=3, **dists)
  assert first == again and first != random_points(50, seed=4, **dists)
  assert all(1e-5 <= p[LR] <= 1e-2 and 0.8 <= p['optim.b1'] <= 0.99 for p in first)
  assert {p['optim.name'] for p in first} == {'adam', 'adamw'}
  # Log-uniform: about as many draws per decade, not 90% in the top one.
  assert sum(p[LR] < 1e-3 for p in first) > 20
  with pytest.raises(ConfigError, match='0 < low < high'):
    log_uniform(0, 1)
  with pytest.raises(ConfigError, match='not a distribution'):
    random_points(2, seed=0, seed_field=[1, 2])


def test_run_names_are_stable_safe_and_unique():
  assert run_name({'seed': 0, LR: 1e-3}) == 'optim.learning_rate=0.001,seed=0'
  assert run_name({'model.hidden': (16, 32)}) == 'model.hidden=16x32'
  assert run_name({}) == 'base'
  odd = run_name({'data.path': 'corpus/**/*.txt'})
  assert '/' not in odd and '*' not in odd and odd == run_name({'data.path': 'corpus/**/*.txt'})
  # A string that looks like two fields gets a hash: it cannot collide with them.
  assert run_name({'a': 'x,b=y'}) != run_name({'a': 'x', 'b': 'y'})
  long = {f'model.field_{i}': 0.123456789 * i for i in range(10)}
  name = run_name(long)
  assert len(name) <= spec.MAX_NAME and name != run_name({**long, 'model.field_9': 0.5})
  points = random_points(200, seed=0, **{LR: log_uniform(1e-5, 1e-1)})
  assert len({run_name(p) for p in points}) == 200


def test_format_value_reads_back_as_flags_parse():
  assert spec.format_value(1e-3) == '0.001' and spec.format_value(1e30) == '1e+30'
  assert spec.format_value((16, 32)) == '(16, 32)' and spec.format_value((3,)) == '(3,)'
  assert spec.format_value(True) == 'True' and spec.format_value('adam') == 'adam'


# --- checking a sweep against its config ------------------------------------------------


def test_validate_types_points_as_the_config_does():
  points = spec.validate(tiny.vae(), [{LR: 1, 'model.hidden': [8, 8]}, {LR: 2e-3}])
  assert points[0] == {LR: 1.0, 'model.hidden': (8, 8)} and isinstance(points[0][LR], float)


@pytest.mark.parametrize(
  'points,message',
  [
    (
      [{'optim.learning_rat': 1e-3}],
      "'optim.learning_rat' is not in the config. Did you mean optim.learning_rate",
    ),
    ([{'optim.nosuch.x': 1}], 'is not in the config'),
    ([{LR: 'fast'}], "optim.learning_rate'='fast' (str): the config holds float"),
    ([{'train.steps': 2.5}], 'the config holds int'),
    ([{'data.binarize': 1}], 'the config holds bool'),
    ([{'optim': 1}], 'is a config section'),
    ([{LR: -1.0}], 'must be > 0'),
    ([{'optim.name': 'adamm'}], 'is not one of'),
    ([], 'the sweep is empty'),
    ({LR: 1e-3}, 'must return a list'),
    ([{'seed': 0}, {'seed': 0}], 'are the same run'),
  ],
)
def test_validate_rejects_bad_sweeps(points, message):
  with pytest.raises(ConfigError) as e:
    spec.validate(tiny.vae(), points)
  assert message in str(e.value)


# --- state on disk ------------------------------------------------------------------------


def _runs(sweep_dir, points, config='/x/tiny_sweep.py', overrides=None):
  return [
    state.RunSpec(str(sweep_dir), run_name(p), config, overrides or {}, p, str(REPO))
    for p in points
  ]


def test_manifest_resumes_the_same_sweep_and_refuses_another(tmp_path):
  runs = _runs(tmp_path, product(seed=[0, 1]))
  state.merge_manifest(tmp_path, runs, add=False)
  state.merge_manifest(tmp_path, runs, add=False)  # the same command again
  other = _runs(tmp_path, product(seed=[2]))
  with pytest.raises(ConfigError, match='holds a different sweep.*--add'):
    state.merge_manifest(tmp_path, other, add=False)
  with pytest.raises(ConfigError, match='different sweep'):
    state.merge_manifest(tmp_path, _runs(tmp_path, product(seed=[0, 1]), config='/y.py'), add=False)
  assert len(state.merge_manifest(tmp_path, other, add=True)) == 3
  state.merge_manifest(tmp_path, runs, add=False)  # a part of what is there: resumes
  clash = _runs(tmp_path, product(seed=[0]), overrides={'train.steps': '9'})
  with pytest.raises(ConfigError, match='cannot share a workdir'):
    state.merge_manifest(tmp_path, clash, add=True)


def test_lock_refuses_a_second_sweep(tmp_path):
  with state.sweep_lock(tmp_path):
    with pytest.raises(state.SweepBusyError, match=f'pid {os.getpid()}.*another --workdir'):
      with state.sweep_lock(tmp_path):
        pass
  with state.sweep_lock(tmp_path):  # released
    pass


def test_slots_share_cores_and_gpus_disjointly(monkeypatch):
  for listed, gpus in (
    ('0,1', ['0', '1']),
    ('', []),
    ('GPU-a1,GPU-b2', ['GPU-a1', 'GPU-b2']),
    ('2,-1,3', ['2']),
  ):
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', listed)
    assert local.visible_gpus() == gpus
  slots = local.plan_slots(2, range(8), [])
  assert [s.cores for s in slots] == [(0, 1, 2, 3), (4, 5, 6, 7)] and slots[0].gpus is None
  slots = local.plan_slots(3, range(2), [0, 1, 2, 3, 4, 5])
  assert [s.cores for s in slots] == [(0,), (1,), (0,)]
  assert [s.gpus for s in slots] == [(0, 1), (2, 3), (4, 5)] and not slots[0].gpu_shared
  slots = local.plan_slots(2, range(4), [0])
  assert [s.gpus for s in slots] == [(0,), (0,)] and slots[0].gpu_shared


_FAKE_MAIN = """
import json, os, sys
args = dict(a[2:].split('=', 1) for a in sys.argv[1:])
workdir = args['workdir']
os.makedirs(workdir, exist_ok=True)
with open(os.path.join(workdir, 'config.json'), 'w') as f:
  json.dump({'train': {'steps': 8}}, f)
print('cores', sorted(os.sched_getaffinity(0)), 'gpus', os.environ.get('CUDA_VISIBLE_DEVICES'))
last = int(args.get('config.seed', '8'))  # the seed says where the fake run stops
with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:
  f.write(json.dumps({'step': last, 'split': 'train', 'loss': 1.0}) + '\\n')
if args.get('config.optim.learning_rate') == '1e+30':
  sys.exit('NonFiniteLossError: Loss became NaN/inf at step 3')
"""


def test_run_point_is_done_only_when_the_last_step_is_logged(tmp_path):
  # A stand-in launch.main (no JAX): what run_point records for each way a run ends.
  fake_repo = tmp_path / 'repo'
  (fake_repo / 'launch').mkdir(parents=True)
  (fake_repo / 'launch' / '__init__.py').write_text('')
  (fake_repo / 'launch' / 'main.py').write_text(_FAKE_MAIN)
  sweep_dir = tmp_path / 'sw'
  finished, stopped, nan = [
    state.RunSpec(str(sweep_dir), run_name(p), '/x.py', {'train.steps': '8'}, p, str(fake_repo))
    for p in ({'seed': 8}, {'seed': 4}, {'seed': 8, LR: 1e30})
  ]
  slot = local.Slot(cores=(min(os.sched_getaffinity(0)),), gpus=('3',))
  status = local.run_point(finished, slot)
  assert status['status'] == 'done' and status['returncode'] == 0 and status['attempts'] == 1
  log = (finished.run_dir / 'sweep.log').read_text()
  assert '--config.train.steps=8 --config.seed=8' in log
  assert f"cores [{slot.cores[0]}] gpus 3" in log
  assert local.run_point(finished)['attempts'] == 1  # done: not run again
  assert local.run_point(stopped)['status'] == 'interrupted'  # exit 0 before the last step
  status = local.run_point(nan)
  assert status['status'] == 'failed' and status['returncode'] == 1
  assert status['error'][-1] == 'NonFiniteLossError: Loss became NaN/inf at step 3'
  assert local.run_point(nan)['attempts'] == 2
  assert os.sched_getaffinity(0) != set(slot.cores) or len(os.sched_getaffinity(0)) == 1


def _fake_run(sweep_dir, point, losses, status='done'):
  run_dir = sweep_dir / run_name(point)
  run_dir.mkdir(parents=True)
  rows = [
    {'step': 4 * (i + 1), 'split': 'train', 'loss': v, 'time': 0} for i, v in enumerate(losses)
  ] + [{'step': 8, 'split': 'test', 'loss': losses[-1] + 1}]
  (run_dir / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
  state.write_status(run_dir, {'status': status, 'attempts': 1, 'wall_seconds': 3.0})


def test_summary_ranks_runs_and_plots_each_field(tmp_path):
  points = product(**{LR: [1e-4, 1e-3, 1e-2], 'optim.name': ['adam']})
  state.merge_manifest(
    tmp_path, _runs(tmp_path, points + [{LR: 1.0, 'optim.name': 'sgd'}]), add=False
  )
  for point, loss in zip(points, (9.0, 5.0, 7.0)):
    _fake_run(tmp_path, point, [10.0, loss])
  result = summary.summarize(tmp_path, 'loss', 'min')
  assert result.best['run'] == 'optim.learning_rate=0.001,optim.name=adam'
  assert [r['loss'] for r in result.rows[:3]] == [5.0, 7.0, 9.0]
  assert result.rows[3]['status'] == 'pending' and 'loss' not in result.rows[3]
  header = (tmp_path / 'summary.csv').read_text().splitlines()[0].split(',')
  assert header[:3] == ['run', LR, 'optim.name'] and {'loss', 'test.loss'} <= set(header)
  md = (tmp_path / 'summary.md').read_text()
  assert 'Best (min loss): optim.learning_rate=0.001' in md
  svg = (tmp_path / f'summary_{LR}.svg').read_text()
  assert svg.startswith('<svg') and '(log scale)' in svg and svg.count('<circle') == 3
  assert (tmp_path / 'summary_optim.name.svg').exists()
  worst = summary.summarize(tmp_path, 'test.loss', 'max')
  assert worst.best['test.loss'] == 10.0
  assert 'pass --metric=' in summary.summarize(tmp_path, 'nll', 'min').headline()


def test_slurm_submission_is_one_array_with_the_flags_resources(tmp_path, monkeypatch):
  # A stand-in sbatch keeps the script submitit writes; nothing waits on the jobs.
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  (bin_dir / 'srun').write_text('#!/bin/sh\nexit 0\n')
  (bin_dir / 'sbatch').write_text(
    f'#!/bin/sh\ncp "$1" {tmp_path}/job.sh\necho "Submitted batch job 4242"\n'
  )
  for tool in bin_dir.iterdir():
    tool.chmod(0o755)
  monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
  sweep_dir = tmp_path / 'lr_sweep'
  jobs = slurm.submit(
    _runs(sweep_dir, product(seed=[0, 1, 2, 3])),
    parallel=2,
    partition='gpu',
    time_min=90,
    gpus_per_task=1,
    cpus_per_task=4,
  )
  assert [j.job_id for j in jobs] == ['4242_0', '4242_1', '4242_2', '4242_3']
  script = (tmp_path / 'job.sh').read_text()
  for line in (
    '--array=0-3%2',
    '--partition=gpu',
    '--time=90',
    '--gpus-per-node=1',
    '--cpus-per-task=4',
    '--job-name=lr_sweep',
  ):
    assert f'#SBATCH {line}\n' in script


# --- launch.sweep end to end (subprocesses; the tiny VAE trains in seconds) -------------


def _sweep(*args, expect=0):
  proc = subprocess.run(
    [sys.executable, '-m', 'launch.sweep', *args],
    cwd=REPO,
    env=dict(os.environ),
    capture_output=True,
    text=True,
    timeout=300,
  )
  if expect is not None and proc.returncode != expect:
    raise AssertionError(
      f'{args} exited {proc.returncode}, not {expect}:\n{proc.stdout}\n{proc.stderr[-4000:]}'
    )
  return proc


def test_local_sweep_reports_failure_and_resumes(mnist_data, tmp_path):
  sweep_dir = tmp_path / 'sw'
  args = ('--config=tests/tiny_sweep.py', f'--workdir={sweep_dir}', '--parallel=2')
  first = _sweep(*args, expect=1)
  bad = 'optim.learning_rate=1e+30,seed=0'
  assert f'3 points: 2 done, 1 failed (see {sweep_dir / bad / "sweep.log"})' in first.stdout
  assert 'Best (min loss): optim.learning_rate=' in first.stdout
  assert 'NaN' in ' '.join(state.read_status(sweep_dir / bad)['error'])
  done = ['optim.learning_rate=0.001,seed=0', 'optim.learning_rate=0.003,seed=0']
  cores = [tuple(state.read_status(sweep_dir / n)['cores']) for n in done]
  assert all(cores) and (len(os.sched_getaffinity(0)) < 2 or not set(cores[0]) & set(cores[1]))
  mtimes = {n: (sweep_dir / n / 'metrics.jsonl').stat().st_mtime_ns for n in done}
  rows = list(csv_rows(sweep_dir / 'summary.csv'))
  assert [r['status'] for r in rows] == ['done', 'done', 'failed']
  assert float(rows[0]['loss']) <= float(rows[1]['loss'])

  again = _sweep(*args, expect=1)  # the done runs are skipped, the failed one retried
  assert 'running 1 of 3 points' in again.stdout
  for name in done:
    assert state.read_status(sweep_dir / name)['attempts'] == 1
    assert (sweep_dir / name / 'metrics.jsonl').stat().st_mtime_ns == mtimes[name]
  assert state.read_status(sweep_dir / bad)['attempts'] == 2

  refused = _sweep('--config=tests/tiny_sweep.py:one', f'--workdir={sweep_dir}', expect=2)
  assert 'holds a different sweep' in refused.stderr and 'Traceback' not in refused.stderr


def csv_rows(path):
  import csv  # pylint: disable=import-outside-toplevel

  with open(path, newline='') as f:
    yield from csv.DictReader(f)


def test_slurm_backend_through_submitits_local_executor(mnist_data, tmp_path):
  sweep_dir = tmp_path / 'sw'
  proc = _sweep(
    '--config=tests/tiny_sweep.py:one',
    f'--workdir={sweep_dir}',
    '--backend=slurm',
    '--slurm_cluster=local',
    '--slurm_time_min=5',
  )
  assert 'submitted 1 of 1 points as job array' in proc.stdout
  assert '1 point: 1 done' in proc.stdout
  status = state.read_status(sweep_dir / 'optim.learning_rate=0.001,seed=0')
  assert status['status'] == 'done' and status['attempts'] == 1
  assert (sweep_dir / 'slurm').is_dir() and (sweep_dir / 'summary.csv').exists()


@pytest.mark.parametrize(
  'config,message',
  [
    ('tests/tiny.py:vae', 'tests/tiny.py defines no get_sweep()'),
    ('tests/tiny_sweep.py:bad_field', "'optim.learning_rat' is not in the config"),
    ('tests/tiny_sweep.py:bad_type', 'the config holds int'),
    ('tests/tiny_sweep.py:empty', 'the sweep is empty'),
  ],
)
def test_bad_sweep_fails_before_anything_starts(tmp_path, config, message):
  proc = _sweep(f'--config={config}', f'--workdir={tmp_path / "sw"}', expect=2)
  assert message in proc.stderr and 'Traceback' not in proc.stderr
  assert not (tmp_path / 'sw').exists()


def test_second_sweep_on_a_locked_workdir_is_refused(tmp_path):
  with state.sweep_lock(tmp_path):
    proc = _sweep('--config=tests/tiny_sweep.py:one', f'--workdir={tmp_path}', expect=2)
  assert 'another launch.sweep' in proc.stderr and f'pid {os.getpid()}' in proc.stderr
  assert not (tmp_path / 'sweep.json').exists()


def _hparams_sessions(folder):
  """{hparam: value} and metric tags of the HParams sessions in a folder's event files."""
  from tensorboardX.proto import event_pb2, plugin_hparams_pb2  # pylint: disable=import-outside-toplevel

  sessions, tags = [], set()
  for path in folder.glob('events.out.tfevents.*'):
    raw = path.read_bytes()
    while raw:  # TFRecord: length (8), its crc (4), the record, its crc (4)
      n = int.from_bytes(raw[:8], 'little')
      event = event_pb2.Event.FromString(raw[12 : 12 + n])
      raw = raw[16 + n :]
      for value in event.summary.value:
        tags.add(value.tag)
        if value.tag == '_hparams_/session_start_info':
          data = plugin_hparams_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
          sessions.append(
            {
              k: v.WhichOneof('kind') and getattr(v, v.WhichOneof('kind'))
              for k, v in data.session_start_info.hparams.items()
            }
          )
  return sessions, tags


def test_summary_writes_the_hparams_dashboard(tmp_path):
  points = product(**{LR: [1e-4, 1e-3], 'optim.name': ['adam']})
  state.merge_manifest(tmp_path, _runs(tmp_path, points), add=False)
  for point, loss in zip(points, (9.0, 5.0)):
    _fake_run(tmp_path, point, [10.0, loss])
  summary.summarize(tmp_path, 'loss', 'min')
  summary.summarize(tmp_path, 'loss', 'min')  # again: replaced, not doubled
  for point in points:
    folder = tmp_path / run_name(point) / 'tensorboard' / 'hparams'
    sessions, tags = _hparams_sessions(folder)
    assert sessions == [{LR: point[LR], 'optim.name': 'adam'}]
    assert {'hparam/loss', 'hparam/test.loss'} <= tags
