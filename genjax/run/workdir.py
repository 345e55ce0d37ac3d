"""The workdir contract: config.json written once (atomically), checked on every resume;
one training process at a time (`training_lock`)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Iterator

import ml_collections
from absl import logging

from genjax import config as config_lib
from genjax.config import ConfigError

CONFIG_FILE = 'config.json'
TRAIN_LOCK = '.train.lock'


class WorkdirBusyError(ConfigError):
  """Another live process holds a workdir's (or a sweep's) lock."""


@contextlib.contextmanager
def flock(path: str | os.PathLike, busy_message: str) -> Iterator[None]:
  """Holds an exclusive lock on `path` for the block, or raises WorkdirBusyError at once.

  The lock is the kernel's `flock`: it goes with its process, so a holder killed with -9
  (or, on NFS, a lost node once its lease ends) leaves nothing held. The file also names
  its holder (pid, host, start) for the message the next one gets; a name left there by a
  holder that died is reported as taken over. `busy_message` has a `{holder}` field.
  """
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, 'a+') as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      holder = f.read().strip() or 'another process'
      raise WorkdirBusyError(busy_message.format(holder=holder)) from None
    f.seek(0)
    left = f.read().strip()
    if left:
      logging.warning('Taking over %s from %s, which is no longer running.', path, left)
    f.seek(0)
    f.truncate()
    f.write(
      f'pid {os.getpid()} on {os.uname().nodename} since {time.strftime("%Y-%m-%d %H:%M:%S")}'
    )
    f.flush()
    try:
      yield
    finally:
      f.truncate(0)
      fcntl.flock(f, fcntl.LOCK_UN)


def training_lock(workdir: str | os.PathLike) -> contextlib.AbstractContextManager[None]:
  """One training process per workdir: a second `launch.main` on a live workdir refuses."""
  return flock(
    Path(workdir) / TRAIN_LOCK,
    f'{workdir} is being trained by {{holder}}: wait for that run to finish (or '
    'stop it), or use another --workdir. launch.sample and launch.evaluate work '
    'on it meanwhile.',
  )


def check_is_directory(workdir: str) -> None:
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ConfigError(
      f'--workdir={workdir} is a file, not a directory: give a directory '
      '(it is created if missing).'
    )


def _read_json(path: str) -> dict:
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise ConfigError(
      f'{path} is damaged ({e}). If this is your run, resume it with '
      '--allow_config_change to write it again from the command line\'s config (the '
      'damaged file is kept as config.json.N), or use another --workdir.'
    ) from e


class ConfigChangedError(RuntimeError):
  """Resuming a workdir with a config that would make a different experiment."""


def check_or_write_config(
  config: ml_collections.ConfigDict, workdir: str, allow_change: bool = False, write: bool = True
) -> None:
  """Refuses to resume under a changed config (naming the fields) unless allowed.

  Only `config_lib.RESUMABLE_CHANGES` (length of the run, logging, evaluation, data
  location) may differ silently. With `allow_change` the new config replaces the old
  one and the old is kept as config.json.<n> so the history is not lost.
  """
  check_is_directory(workdir)
  path = os.path.join(workdir, CONFIG_FILE)
  if os.path.exists(path):
    try:
      saved = _read_json(path)
    except ConfigError:
      if not allow_change:
        raise
      saved = {}  # damaged: replaced by the command line's config, kept as config.json.N
    diffs = config_lib.config_differences(saved, config)
    if diffs and not allow_change:
      raise ConfigChangedError(
        f'{path} holds a different experiment; refusing to resume it with these changes:\n  '
        + '\n  '.join(diffs)
        + '\nUse a new --workdir, or pass --allow_config_change to resume with the new '
        'config anyway.'
      )
    if diffs and write:
      n = 1
      while os.path.exists(f'{path}.{n}'):
        n += 1
      os.replace(path, f'{path}.{n}')
  if write:
    os.makedirs(workdir, exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      f.write(config_lib.to_json(config))
    os.replace(tmp, path)


def read_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(
      f'{path} not found: {workdir!r} is not a genjax workdir (train one with '
      '`python -m launch.main --config=experiments/NAME.py --workdir=DIR`).'
    )
  return _to_config(_read_json(path))


def _to_config(tree):
  """JSON lists back to tuples, as experiments declare them (image_shape, widths)."""
  if isinstance(tree, dict):
    return ml_collections.ConfigDict({k: _to_config(v) for k, v in tree.items()})
  if isinstance(tree, list):
    return tuple(tree)
  return tree
