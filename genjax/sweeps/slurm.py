"""Runs sweep points as one SLURM job array, through submitit.

Each array task calls `local.run_point` on its node, the same function the local
backend calls, so the status files, logs and resume rules are the same. SLURM gives
each task its own CPUs and GPUs (cgroups), so no affinity is set. submitit keeps its
submission files and each task's stdout/stderr under DIR/slurm/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

from genjax.config import ConfigError
from genjax.sweeps import local, state


def job_name(sweep_dir: str | os.PathLike) -> str:
  """What squeue's NAME column shows (its first 8 characters by default): the sweep
  directory's name, so two sweeps are told apart."""
  return Path(sweep_dir).resolve().name


def submit(
  runs: Sequence[state.RunSpec],
  *,
  parallel: int,
  partition: str = '',
  time_min: int = 240,
  gpus_per_task: int = 0,
  cpus_per_task: int = 1,
  cluster: str | None = None,
) -> list[Any]:
  """Submits `runs` as one job array, at most `parallel` tasks at once; returns the jobs.

  `cluster=None` needs SLURM (srun on PATH); 'local' runs the same array through
  submitit's local executor (a process per task on this machine, all at once): the
  tests' way to exercise this path without a cluster.
  """
  import submitit  # pylint: disable=import-outside-toplevel  # only this backend needs it

  if cluster is None and shutil.which('srun') is None:
    raise ConfigError(
      '--backend=slurm needs a SLURM cluster (no `srun` on PATH); run this '
      'on a login node, or use --backend=local.'
    )
  sweep_dir = Path(runs[0].sweep_dir)
  executor = submitit.AutoExecutor(folder=sweep_dir / 'slurm', cluster=cluster)
  executor.update_parameters(
    name=job_name(sweep_dir),
    timeout_min=time_min,
    gpus_per_node=gpus_per_task,
    cpus_per_task=cpus_per_task,
    tasks_per_node=1,
    slurm_partition=partition or None,
    slurm_array_parallelism=parallel,
  )
  for run in runs:
    run.run_dir.mkdir(parents=True, exist_ok=True)
  return executor.map_array(local.run_point, runs)


def run_slurm(
  runs: Sequence[state.RunSpec],
  *,
  parallel: int,
  report: Callable[[str], None] = print,
  **slurm: Any,
) -> dict[str, dict[str, Any]]:
  """Submits the points not yet done (`submit`, which takes the `slurm` keywords), waits
  for them and returns {name: status}. Ctrl-C stops waiting, not the jobs."""
  results = {r.name: state.read_status(r.run_dir) for r in runs}
  todo = [r for r in runs if results[r.name]['status'] != 'done']
  if not todo:
    return results
  jobs = submit(todo, parallel=parallel, **slurm)
  sweep_dir = Path(todo[0].sweep_dir)
  array_id = jobs[0].job_id.split('_')[0]
  report(
    f'submitted {len(jobs)} of {len(runs)} points as job array {array_id} '
    f'({job_name(sweep_dir)}, at most {parallel} at once); logs in {sweep_dir / "slurm"}'
  )
  try:
    for run, job in zip(todo, jobs):
      try:
        results[run.name] = job.result()
      except Exception as e:  # pylint: disable=broad-except
        # The task died outside run_point's control (time limit, node failure, cancel).
        status = state.read_status(run.run_dir)
        last = (str(e).strip().splitlines() or [''])[-1]
        status.setdefault('error', []).append(
          f'SLURM task {job.job_id}: {type(e).__name__}: {last}'
        )
        if status['status'] != 'done':
          status['status'] = 'failed'
        results[run.name] = status
      report(local.outcome(run, results[run.name]))
  except KeyboardInterrupt:
    report(
      f'stopped waiting; the jobs go on (squeue -j {array_id}; scancel {array_id} '
      'stops them). Rerun with --summarize for the table, or the same command to '
      'resume what did not finish.'
    )
    raise
  return results
