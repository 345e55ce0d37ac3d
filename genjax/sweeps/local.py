"""Runs sweep points as `launch.main` processes: one point (`run_point`, which the SLURM
backend runs too) and a whole sweep on this machine, at most N at once (`run_local`).

Fair share is by CPU affinity: with N processes on C cores, each process is pinned
to its own C//N cores (it inherits the affinity of the thread that starts it), and XLA
sizes its thread pools from the cores it may use. GPUs, where there are any, are split
the same way through CUDA_VISIBLE_DEVICES. XLA_FLAGS and the rest of the environment
pass through unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from genjax.sweeps import spec, state
from genjax.writers.metrics import read_metrics

LOG_TAIL_LINES = 20


@dataclasses.dataclass(frozen=True)
class Slot:
  """The share of the machine one process gets; None leaves that resource untouched."""

  cores: tuple[int, ...] | None = None
  gpus: tuple[int | str, ...] | None = None
  gpu_shared: bool = False  # several processes on one GPU: no whole-memory preallocation


def command(run: state.RunSpec) -> list[str]:
  """The `launch.main` command line of one run."""
  point = [f'--config.{k}={spec.format_value(v)}' for k, v in sorted(run.point.items())]
  common = [f'--config.{k}={v}' for k, v in run.overrides.items()]
  return [
    sys.executable,
    '-m',
    'launch.main',
    f'--config={run.config}',
    f'--workdir={run.run_dir}',
    *common,
    *point,
  ]


def reached_final_step(run_dir: str | os.PathLike) -> bool:
  """Whether the run logged its last step: launch.main also exits 0 when it stops on
  SIGTERM/Ctrl-C (checkpoint saved, to resume), so exit 0 alone is not `done`."""
  config = state.read_json(Path(run_dir) / 'config.json')
  steps = [r['step'] for r in read_metrics(run_dir) if r.get('split') == 'train']
  return bool(config and steps) and max(steps) >= config['train']['steps']


def _log_tail(path: str | os.PathLike, start: int) -> list[str]:
  with open(path, 'rb') as f:
    f.seek(start)
    lines = f.read().decode('utf-8', 'replace').splitlines()
  return [line for line in lines if line.strip()][-LOG_TAIL_LINES:]


@contextlib.contextmanager
def _pinned(cores: Sequence[int] | None) -> Iterator[None]:
  """Pins the calling thread to `cores` while it starts a process, which inherits that.

  Affinity is per thread on Linux, so the sweep's other threads keep theirs. (Setting it
  in the child with Popen's preexec_fn would run Python between fork and exec, which is
  unsafe in a process with threads, as the sweep is.)
  """
  if not cores:
    yield
    return
  saved = os.sched_getaffinity(0)
  os.sched_setaffinity(0, cores)
  try:
    yield
  finally:
    os.sched_setaffinity(0, saved)


def run_point(
  run: state.RunSpec,
  slot: Slot = Slot(),
  on_start: Callable[[subprocess.Popen], None] | None = None,
) -> dict[str, Any]:
  """Runs (or resumes) one point to the end; returns and records its status.

  A point already done is not run again. The status says `done` only when launch.main
  exited 0 having logged its final step; anything else leaves it to run again next time
  (launch.main resumes from the run's latest checkpoint).
  """
  run_dir = run.run_dir
  run_dir.mkdir(parents=True, exist_ok=True)
  with state.run_lock(run_dir):
    status = state.read_status(run_dir)
    if status['status'] == 'done':
      return status
    status.update(
      status='running',
      attempts=status['attempts'] + 1,
      returncode=None,
      host=socket.gethostname(),
      started=time.strftime('%Y-%m-%d %H:%M:%S'),
      cores=list(slot.cores) if slot.cores else None,
      gpus=list(slot.gpus) if slot.gpus is not None else None,
    )
    status.pop('error', None)
    state.write_status(run_dir, status)
    env = dict(os.environ)
    if slot.gpus is not None:
      env['CUDA_VISIBLE_DEVICES'] = ','.join(map(str, slot.gpus))
      if slot.gpu_shared:
        env['XLA_PYTHON_CLIENT_PREALLOCATE'] = 'false'
    log_path = run_dir / state.LOG
    cmd = command(run)
    with open(log_path, 'ab') as log:
      log.write(
        f'=== attempt {status["attempts"]} on {status["host"]} at {status["started"]}: '
        f'{" ".join(cmd)}\n'.encode()
      )
      log.flush()
      start = log.tell()  # this attempt's output starts here
      began = time.perf_counter()
      with _pinned(slot.cores):
        proc = subprocess.Popen(
          cmd, cwd=run.repo_root, env=env, stdout=log, stderr=subprocess.STDOUT
        )
      if on_start is not None:
        on_start(proc)
      returncode = proc.wait()
    wall = time.perf_counter() - began
    finished = returncode == 0 and reached_final_step(run_dir)
    status.update(
      status='done' if finished else 'interrupted' if returncode == 0 else 'failed',
      returncode=returncode,
      wall_seconds=round(status['wall_seconds'] + wall, 2),
      finished=time.strftime('%Y-%m-%d %H:%M:%S'),
    )
    if not finished:
      status['error'] = _log_tail(log_path, start)
    state.write_status(run_dir, status)
    return status


def visible_gpus() -> list[str]:
  """GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (indices, or UUIDs):
  that variable if set ('' or -1: none), else nvidia-smi's list, else none."""
  listed = os.environ.get('CUDA_VISIBLE_DEVICES')
  if listed is not None:
    gpus = [g.strip() for g in listed.split(',') if g.strip()]
    return gpus[: gpus.index('-1')] if '-1' in gpus else gpus  # CUDA stops at an invalid id
  if shutil.which('nvidia-smi') is None:
    return []
  try:
    out = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=30)
  except (OSError, subprocess.SubprocessError):
    return []
  return [str(i) for i in range(sum(line.startswith('GPU ') for line in out.stdout.splitlines()))]


def plan_slots(n: int, cores: Sequence[int], gpus: Sequence[int | str]) -> list[Slot]:
  """Disjoint shares for `n` processes: len(cores)//n cores each, and the GPUs likewise.

  With more processes than cores (or GPUs) they take turns round the list and share.
  """
  cores, gpus = sorted(cores), list(gpus)  # GPUs in the order CUDA_VISIBLE_DEVICES gave
  slots = []
  for i in range(n):
    if len(cores) >= n:
      per = len(cores) // n
      mine = tuple(cores[i * per : (i + 1) * per])
    else:
      mine = (cores[i % len(cores)],) if cores else None
    if not gpus:
      slots.append(Slot(mine, None))
    elif len(gpus) >= n:
      per = len(gpus) // n
      slots.append(Slot(mine, tuple(gpus[i * per : (i + 1) * per])))
    else:
      slots.append(Slot(mine, (gpus[i % len(gpus)],), gpu_shared=True))
  return slots


def run_local(
  runs: Sequence[state.RunSpec], parallel: int, report: Callable[[str], None] = print
) -> dict[str, dict[str, Any]]:
  """Runs the points not yet done, `parallel` at a time, each in its own share of the
  machine; returns {name: status}. A failed point is reported; the others go on.

  SIGINT/SIGTERM (from the main thread) stop starting new points and pass SIGTERM on
  to the running ones, which checkpoint and exit; the same command resumes them.
  """
  results = {r.name: state.read_status(r.run_dir) for r in runs}
  todo = deque(r for r in runs if results[r.name]['status'] != 'done')
  if not todo:
    return results
  workers = min(parallel, len(todo))
  slots = plan_slots(workers, sorted(os.sched_getaffinity(0)), visible_gpus())
  share = f'{len(slots[0].cores)} core(s) each' if slots[0].cores else ''
  if slots[0].gpus is not None:
    share += f', GPU(s) {"; ".join(",".join(map(str, s.gpus)) for s in slots)}'
  # Re-entrant: a second Ctrl-C runs `stop` again in the main thread while it holds the lock.
  lock, stopping, running = threading.RLock(), threading.Event(), set()
  printing = threading.Lock()

  def say(line: str) -> None:  # one whole line at a time from every thread
    with printing:
      report(line)

  say(f'running {len(todo)} of {len(runs)} points, {workers} at a time ({share})')

  def started(proc: subprocess.Popen) -> None:
    with lock:
      running.add(proc)
      if stopping.is_set():
        proc.terminate()

  def worker(slot: Slot) -> None:
    while not stopping.is_set():
      with lock:
        if not todo:
          return
        run = todo.popleft()
      say(f'[start] {run.name}')
      try:
        status = run_point(run, slot, started)
      except state.SweepBusyError as e:
        status = {'status': 'busy', 'error': [str(e)]}
      except Exception as e:  # pylint: disable=broad-except
        # One broken point (a full disk, a bad path) must not take the others down.
        status = {'status': 'failed', 'error': [f'{type(e).__name__}: {e}']}
      with lock:
        running.difference_update({p for p in running if p.poll() is not None})
        results[run.name] = status
      say(outcome(run, status))

  def stop(signum, frame) -> None:
    del frame
    say(
      f'{signal.Signals(signum).name}: no new points; running ones checkpoint and stop. '
      'Run the same command to resume.'
    )
    with lock:
      stopping.set()
      for proc in running:
        if proc.poll() is None:
          proc.terminate()

  in_main = threading.current_thread() is threading.main_thread()
  previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
  threads = [threading.Thread(target=worker, args=(slot,), daemon=True) for slot in slots]
  try:
    for t in threads:
      t.start()
    while any(t.is_alive() for t in threads):
      for t in threads:
        t.join(timeout=0.5)  # short joins: the main thread must stay free for signals
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
  return results


def outcome(run: state.RunSpec, status: dict[str, Any]) -> str:
  what = status['status']
  if what == 'done':
    return f'[done ] {run.name} in {status.get("wall_seconds", 0):.1f} s'
  last = (status.get('error') or ['(no output)'])[-1]
  if what == 'busy':
    return f'[busy ] {run.name}: {last}'
  return (
    f'[{"FAIL " if what == "failed" else "stop "}] {run.name} (exit '
    f'{status.get("returncode")}): {last}\n        see {run.run_dir / state.LOG}'
  )
