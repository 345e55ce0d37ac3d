r"""Runs a hyperparameter sweep: every point of the experiment file's get_sweep().

  python -m launch.sweep --config=experiments/mnist_vae.py --workdir=runs/vae_sweep --parallel=2
  python -m launch.sweep --config=experiments/mnist_vae.py --workdir=runs/vae_sweep \
      --config.train.steps=5000                                 # applies to every point
  python -m launch.sweep --workdir=runs/vae_sweep --summarize --metric=test.loss
  python -m launch.sweep --config=experiments/mnist_vae.py --workdir=runs/vae_sweep \
      --backend=slurm --parallel=8 --slurm_partition=gpu --slurm_gpus_per_task=1

Each point trains as `python -m launch.main` in DIR/<name>, <name> made of its
overrides (`optim.learning_rate=0.001,seed=0`). Locally at most --parallel run at once,
each pinned to its own share of the cores (and GPUs); with --backend=slurm the points
go to SLURM as one job array. A failed point is reported and the others go on. The same
command again skips finished points and resumes the rest. At the end DIR/summary.csv,
DIR/summary.md and DIR/summary_<field>.svg rank the runs by --metric. With --vectorize
(local) points that differ only in shape-free values train at once, one vmapped step
per group (genjax.sweeps.vectorized).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

from genjax.config import ConfigError
from genjax.sweeps import local, slurm, spec, state, summary, vectorized
from launch import common

REPO_ROOT = Path(__file__).resolve().parents[1]

_CONFIG = config_flags.DEFINE_config_file(
  'config',
  None,
  'Experiment config file with get_sweep(); --config.FIELD=VALUE overrides apply to every point.',
)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Sweep directory: one sub-workdir per point.')
_PARALLEL = flags.DEFINE_integer(
  'parallel', 1, 'Points running at once (local: on this machine; slurm: the array\'s task limit).'
)
_BACKEND = flags.DEFINE_enum('backend', 'local', ['local', 'slurm'], 'Where points run.')
_VECTORIZE = flags.DEFINE_bool(
  'vectorize',
  False,
  'local: train points that differ only in '
  'shape-free values (learning rate, seed, ...) at once, one '
  'vmapped step per group, in this process '
  '(genjax.sweeps.vectorized).',
)
_SUMMARIZE = flags.DEFINE_bool(
  'summarize',
  False,
  'Only write DIR/summary.* from what has run so far (works while the sweep runs).',
)
_METRIC = flags.DEFINE_string(
  'metric',
  'loss',
  'Column that ranks the runs: a train metric '
  '(loss), test.NAME (last test row) or eval.NAME (eval.json).',
)
_MODE = flags.DEFINE_enum('mode', 'min', ['min', 'max'], 'Whether lower or higher --metric wins.')
_ADD = flags.DEFINE_bool(
  'add', False, 'Add these points to a directory that holds another sweep (otherwise refused).'
)
_PARTITION = flags.DEFINE_string('slurm_partition', '', 'SLURM partition; empty: the default.')
_TIME_MIN = flags.DEFINE_integer(
  'slurm_time_min',
  240,
  'SLURM time limit per point, minutes. A point that hits it resumes when the sweep is run again.',
)
_GPUS = flags.DEFINE_integer('slurm_gpus_per_task', 0, 'GPUs per point on SLURM.')
_CPUS = flags.DEFINE_integer('slurm_cpus_per_task', 1, 'CPUs per point on SLURM.')
_CLUSTER = flags.DEFINE_enum(
  'slurm_cluster',
  'slurm',
  ['slurm', 'local'],
  'local: run the SLURM path through submitit\'s local executor (to try it without a cluster).',
)
flags.mark_flags_as_required(['workdir'])


def load_sweep(config_arg: str) -> list[dict]:
  """Calls get_sweep() of the config file (with its ':argument' where it takes one)."""
  path, _, argument = config_arg.partition(':')
  if not os.path.isfile(path):
    raise ConfigError(f'config file {path} does not exist.')
  module_spec = importlib.util.spec_from_file_location('sweep_config', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  get_sweep = getattr(module, 'get_sweep', None)
  if get_sweep is None:
    raise ConfigError(
      f'{path} defines no get_sweep(); add one returning a list of override '
      'dicts (see genjax.sweeps).'
    )
  takes_argument = bool(inspect.signature(get_sweep).parameters)
  return get_sweep(argument) if argument and takes_argument else get_sweep()


def build_runs(sweep_dir: str) -> list[state.RunSpec]:
  """The RunSpecs of this command's sweep, checked against its config before anything runs."""
  flag = flags.FLAGS['config']
  if _CONFIG.value is None:
    raise ConfigError('--config is required (unless --summarize).')
  config_arg = flag.config_filename
  common_overrides = dict(flag.override_values)
  points = spec.validate(_CONFIG.value, load_sweep(config_arg))
  both = sorted({k for p in points for k in p} & set(common_overrides))
  if both:
    raise ConfigError(
      f'{", ".join(both)} {"is" if len(both) == 1 else "are"} both swept '
      f'and set on the command line (--config.{both[0]}=...); drop one.'
    )
  path, colon, argument = config_arg.partition(':')
  config = os.path.abspath(path) + colon + argument
  overrides = {k: spec.format_value(v) for k, v in sorted(common_overrides.items())}
  return [
    state.RunSpec(
      sweep_dir=sweep_dir,
      name=spec.run_name(p),
      config=config,
      overrides=overrides,
      point=p,
      repo_root=str(REPO_ROOT),
    )
    for p in points
  ]


def report_summary(sweep_dir: str) -> summary.Summary:
  result = summary.summarize(sweep_dir, _METRIC.value, _MODE.value)
  print(summary.table(result))
  print(result.headline())
  print('wrote ' + ', '.join(str(p) for p in result.files), flush=True)
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  sweep_dir = os.path.abspath(_WORKDIR.value)
  with common.user_errors_exit():
    if _SUMMARIZE.value:
      report_summary(sweep_dir)
      return
    if _PARALLEL.value < 1:
      raise ConfigError(f'--parallel must be >= 1, got {_PARALLEL.value}.')
    runs = build_runs(sweep_dir)

    def report(line: str) -> None:
      print(line, flush=True)  # progress as it happens, also when stdout is a file

    with state.sweep_lock(sweep_dir):
      state.merge_manifest(sweep_dir, runs, add=_ADD.value, command=' '.join(sys.argv))
      done = sum(state.read_status(r.run_dir)['status'] == 'done' for r in runs)
      report(
        f'sweep of {len(runs)} points in {sweep_dir}'
        + (f' ({done} done before, skipped)' if done else '')
      )
      if _BACKEND.value == 'local' and _VECTORIZE.value:
        results = vectorized.run_local_vectorized(_CONFIG.value, runs, report)
      elif _BACKEND.value == 'local':
        results = local.run_local(runs, _PARALLEL.value, report)
      else:
        try:
          results = slurm.run_slurm(
            runs,
            parallel=_PARALLEL.value,
            report=report,
            partition=_PARTITION.value,
            time_min=_TIME_MIN.value,
            gpus_per_task=_GPUS.value,
            cpus_per_task=_CPUS.value,
            cluster=None if _CLUSTER.value == 'slurm' else _CLUSTER.value,
          )
        except KeyboardInterrupt:
          sys.exit(130)  # run_slurm said where the jobs are
      report_summary(sweep_dir)
    counts = {}
    for status in results.values():
      counts[status['status']] = counts.get(status['status'], 0) + 1
    failed = [name for name, status in results.items() if status['status'] == 'failed']
    where = ', '.join(str(Path(sweep_dir) / name / state.LOG) for name in failed[:3])
    tally = ', '.join(f'{n} {s}' for s, n in sorted(counts.items()))
    print(
      f'{len(runs)} point{"s" * (len(runs) != 1)}: {tally}'
      + (f' (see {where}{", ..." if len(failed) > 3 else ""})' if failed else ''),
      flush=True,
    )
    if any(status['status'] != 'done' for status in results.values()):
      sys.exit(1)  # a script chaining on the sweep must not take a partial one for done


if __name__ == '__main__':
  app.run(main, flags_parser=common.parse_flags)
