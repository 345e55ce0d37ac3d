"""The workdir contract: config.json written once, checked on every resume."""

from __future__ import annotations

import json
import os

import ml_collections

from genjax import config as config_lib

CONFIG_FILE = 'config.json'


class ConfigChangedError(RuntimeError):
  """Resuming a workdir with a config that would make a different experiment."""


def check_or_write_config(config: ml_collections.ConfigDict, workdir: str,
                          allow_change: bool = False, write: bool = True) -> None:
  """Refuses to resume under a changed config (naming the fields) unless allowed.

  Only `config_lib.RESUMABLE_CHANGES` (length of the run, logging, evaluation, data
  location) may differ silently. With `allow_change` the new config replaces the old
  one and the old is kept as config.json.<n> so the history is not lost.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    diffs = config_lib.config_differences(saved, config)
    if diffs and not allow_change:
      raise ConfigChangedError(
          f'{path} holds a different experiment; refusing to resume it with these changes:\n  '
          + '\n  '.join(diffs)
          + '\nUse a new --workdir, or pass --allow_config_change to resume with the new '
          'config anyway.')
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
        '`python -m launch.main --config=experiments/NAME.py --workdir=DIR`).')
  with open(path) as f:
    return _to_config(json.load(f))


def _to_config(tree):
  """JSON lists back to tuples, as experiments declare them (image_shape, widths)."""
  if isinstance(tree, dict):
    return ml_collections.ConfigDict({k: _to_config(v) for k, v in tree.items()})
  if isinstance(tree, list):
    return tuple(tree)
  return tree
