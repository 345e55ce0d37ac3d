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

USER_ERRORS = (ConfigError, DataError, ConfigChangedError, FileNotFoundError, TokenizerError,
               NonFiniteLossError)


@contextlib.contextmanager
def user_errors_exit():
  """A mistake the user can fix ends the program with its message, not a traceback."""
  try:
    yield
  except USER_ERRORS as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with config overrides of unknown fields reported cleanly.

  `ml_collections` raises AttributeError/KeyError for `--config.no.such.field`; that is
  a typo to point at (with its "did you mean"), not a crash to show as a traceback.
  """
  quiet_libraries()
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f'FATAL Flags parsing error: {e}\nPass --helpshort or --helpfull to see help on '
          'flags.', file=sys.stderr)
    sys.exit(1)
  except (AttributeError, KeyError) as e:
    detail = str(e).strip('\'"').replace('\\n', ' ').replace("\\'", "'")
    overrides = [a for a in argv[1:] if a.startswith('--config.')]
    print(f'FATAL Flags parsing error: unknown config field ({detail}) in '
          f'{" ".join(overrides)}', file=sys.stderr)
    sys.exit(1)


class _QuietLibraries(std_logging.Filter):
  """Drops INFO chatter of libraries that log through absl (Orbax logs every file it
  writes); their warnings and errors still show."""

  NOISY = (f'{os.sep}orbax{os.sep}', f'{os.sep}jax{os.sep}_src{os.sep}')

  def filter(self, record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or not any(
        part in record.pathname for part in self.NOISY)


def quiet_libraries() -> None:
  logging.get_absl_handler().addFilter(_QuietLibraries())
