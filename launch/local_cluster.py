r"""Starts N `launch.main` processes on this machine as one multi-process run, for trying it out.

  python -m launch.local_cluster --num_processes=2 --devices_per_process=2 -- \
      --config=experiments/mnist_vae.py --workdir=runs/mnist_vae_2x2

Everything after `--` goes to every `launch.main`. Each process gets
`devices_per_process` fake CPU devices and its own id; they meet at a free port on
loopback and all-reduce over CPU collectives (gloo), as hosts of a cluster would. The
output of process 0 is shown; the others' goes to a log file each, and is printed if
that process fails. When one fails the rest are killed (they would wait for it
forever), and the exit status is the failed one's.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

from absl import app, flags

_NUM_PROCESSES = flags.DEFINE_integer('num_processes', 2, 'Processes to start.', lower_bound=1)
_DEVICES = flags.DEFINE_integer(
  'devices_per_process', 2, 'Fake CPU devices of each process.', lower_bound=1
)
# Not --log_dir: absl.logging owns that name.
_LOGS = flags.DEFINE_string(
  'process_logs',
  None,
  'Directory for process_I.log of processes 1.. (default: a temporary one, removed after).',
)

REPO = pathlib.Path(__file__).resolve().parents[1]
_DEVICE_COUNT_FLAG = re.compile(r'--xla_force_host_platform_device_count=\S*')


def free_port() -> int:
  """A port nothing listens on now (the coordinator binds it a moment later)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def process_env(devices: int, base: dict[str, str] | None = None) -> dict[str, str]:
  """The environment of one local process: CPU only, `devices` fake devices."""
  env = dict(os.environ if base is None else base)
  xla_flags = _DEVICE_COUNT_FLAG.sub('', env.get('XLA_FLAGS', '')).strip()
  env['XLA_FLAGS'] = f'{xla_flags} --xla_force_host_platform_device_count={devices}'.strip()
  env['JAX_PLATFORMS'] = 'cpu'
  # `-m launch.main` must import from this repository whatever the working directory.
  env['PYTHONPATH'] = os.pathsep.join(p for p in (str(REPO), env.get('PYTHONPATH')) if p)
  return env


def _die_with_parent() -> None:
  """Linux: the kernel kills the process when the launcher dies, even by SIGKILL."""
  try:
    import ctypes

    ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    pass  # elsewhere the failure handling below is all there is


def commands(num_processes: int, port: int, args: list[str]) -> list[list[str]]:
  return [
    [
      sys.executable,
      '-m',
      'launch.main',
      f'--coordinator_address=127.0.0.1:{port}',
      f'--num_processes={num_processes}',
      f'--process_id={i}',
      *args,
    ]
    for i in range(num_processes)
  ]


def run(num_processes: int, devices: int, args: list[str], log_dir: str) -> int:
  """Runs the processes to the end; returns 0, or the exit status of the first that failed."""
  env = process_env(devices)
  logs = [None] + [
    open(os.path.join(log_dir, f'process_{i}.log'), 'wb') for i in range(1, num_processes)
  ]
  procs = [
    subprocess.Popen(
      cmd,
      env=env,
      stdout=log,
      stderr=subprocess.STDOUT if log else None,
      preexec_fn=_die_with_parent,
    )
    for cmd, log in zip(commands(num_processes, free_port(), args), logs)
  ]

  def forward(signum, frame):  # a SIGTERM to the launcher is a preemption notice to all
    del frame
    for p in procs:
      if p.poll() is None:
        p.send_signal(signum)

  previous = signal.signal(signal.SIGTERM, forward)
  try:
    while True:
      codes = [p.poll() for p in procs]
      failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
      if failed or all(code == 0 for code in codes):
        break
      try:
        time.sleep(0.2)
      except KeyboardInterrupt:
        # Ctrl-C reached every process too (same process group): they checkpoint and
        # stop at an agreed step. A second Ctrl-C ends them at once.
        print(
          'local_cluster: waiting for the processes to checkpoint and stop '
          '(Ctrl-C again to kill them).',
          file=sys.stderr,
        )
        signal.signal(signal.SIGINT, signal.SIG_DFL)
  finally:
    # SIGKILL: a process whose peer died is stuck in a collective, and with JAX's
    # preemption service installed SIGTERM would not end it.
    for p in procs:
      if p.poll() is None:
        p.kill()
      p.wait()
    signal.signal(signal.SIGTERM, previous)
    for log in logs[1:]:
      log.close()
  if not failed:
    return 0
  first = failed[0]
  for i in failed:
    if logs[i] is not None:
      tail = pathlib.Path(logs[i].name).read_text(errors='replace').splitlines()[-40:]
      print(
        f'--- process {i} exited with {codes[i]}; last lines of {logs[i].name}:\n'
        + '\n'.join(tail),
        file=sys.stderr,
      )
  print(
    f'local_cluster: process {first} of {num_processes} failed (exit {codes[first]}); '
    'stopped the others.',
    file=sys.stderr,
  )
  return codes[first] if codes[first] > 0 else 128 - codes[first]  # -N: killed by signal N


def main(argv):
  args = argv[1:]
  if not args:
    raise app.UsageError(
      'Pass the arguments of launch.main after `--`, e.g. '
      '-- --config=experiments/mnist_vae.py --workdir=runs/x'
    )
  if _LOGS.value:
    os.makedirs(_LOGS.value, exist_ok=True)
    sys.exit(run(_NUM_PROCESSES.value, _DEVICES.value, args, _LOGS.value))
  with tempfile.TemporaryDirectory(prefix='local_cluster_') as log_dir:
    code = run(_NUM_PROCESSES.value, _DEVICES.value, args, log_dir)
  sys.exit(code)


if __name__ == '__main__':
  app.run(main)
