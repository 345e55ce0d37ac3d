"""What every entry point shares: turning user errors into one clear message."""

from __future__ import annotations

import contextlib
import logging as std_logging
import os
import sys

from absl import flags, logging

from genjax.config import ConfigError
from genjax.data.files import DataError
from genjax.data.tokenizers import TokenizerError
from genjax.run.loop import NonFiniteLossError
from genjax.run.workdir import ConfigChangedError

USER_ERRORS = (
  ConfigError,
  DataError,
  ConfigChangedError,
  FileNotFoundError,
  TokenizerError,
  NonFiniteLossError,
)


@contextlib.contextmanager
def user_errors_exit():
  """A mistake the user can fix ends the program with its message, not a traceback."""
  try:
    yield
  except USER_ERRORS as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


DEVICE_COUNT_FLAG = '--xla_force_host_platform_device_count'


def cpu_devices_per_core(
  global_batch: int | None, num_processes: int = 1, wanted: int = 0
) -> str | None:
  """XLA CPU devices for this process, set before JAX starts: `wanted` when the experiment
  names a count (config.parallel.cpu_devices), else one per core (XLA's own default is one
  per process), so the data-parallel step keeps every core busy. `global_batch` None: no
  step batch to divide (launch.evaluate, launch.sample, whose samplers split what divides).

  Which is faster depends on the step (bench.throughput times both for the image
  experiments, bench.frameworks for the language model). Skipped when
  XLA_FLAGS already sets the count; with a per-process batch that does not divide, the
  largest count that does. Only the host platform reads the flag, so an accelerator run
  is unaffected. Returns a line to log, or None when it changed nothing.
  """
  flags_now = os.environ.get('XLA_FLAGS', '')
  if DEVICE_COUNT_FLAG in flags_now:
    return None
  target = wanted if wanted > 0 else (os.cpu_count() or 1)
  if global_batch is None:
    local_batch = target
  else:
    local_batch = max(global_batch // max(num_processes, 1), 1)
  count = max(d for d in range(1, target + 1) if local_batch % d == 0)
  if count == 1 and wanted <= 0:
    return None  # XLA's default already
  os.environ['XLA_FLAGS'] = f'{flags_now} {DEVICE_COUNT_FLAG}={count}'.strip()
  reason = 'as config.parallel.cpu_devices asks' if wanted > 0 else 'one per core'
  why = (
    ''
    if count == target
    else f' (the largest count that divides the batch of {local_batch} into at most {target})'
  )
  choose = '' if global_batch is None else '--config.parallel.cpu_devices=N or '
  return (
    f'CPU: {count} XLA device(s), {reason}{why}; {choose}XLA_FLAGS={DEVICE_COUNT_FLAG}=N chooses.'
  )


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with config overrides of unknown fields reported cleanly.

  `ml_collections` raises AttributeError/KeyError for `--config.no.such.field`; that is
  a typo to point at (with its "did you mean"), not a crash to show as a traceback.
  """
  quiet_libraries()
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(
      f'FATAL Flags parsing error: {e}\nPass --helpshort or --helpfull to see help on flags.',
      file=sys.stderr,
    )
    sys.exit(1)
  except (AttributeError, KeyError) as e:
    detail = str(e).strip('\'"').replace('\\n', ' ').replace("\\'", "'")
    overrides = [a for a in argv[1:] if a.startswith('--config.')]
    print(
      f'FATAL Flags parsing error: unknown config field ({detail}) in {" ".join(overrides)}',
      file=sys.stderr,
    )
    sys.exit(1)


class _QuietLibraries(std_logging.Filter):
  """Drops INFO chatter of libraries that log through absl (Orbax logs every file it
  writes); their warnings and errors still show."""

  NOISY = (f'{os.sep}orbax{os.sep}', f'{os.sep}jax{os.sep}_src{os.sep}')

  def filter(self, record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or not any(
      part in record.pathname for part in self.NOISY
    )


def quiet_libraries() -> None:
  logging.get_absl_handler().addFilter(_QuietLibraries())
