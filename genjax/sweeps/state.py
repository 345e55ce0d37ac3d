"""A sweep's state on disk: the manifest, each run's status, and the locks.

    DIR/sweep.json               the runs: name, config file, common overrides, the point
    DIR/.sweep.lock              held (fcntl.flock) by the one launch.sweep working on DIR
    DIR/<name>/sweep_status.json pending | running | done | failed | interrupted, returncode,
                                 wall_seconds (all attempts), attempts, log tail on failure
    DIR/<name>/sweep.log         the run's stdout and stderr, every attempt appended
    DIR/<name>/.run.lock         held while a process runs that point (local or SLURM)

Files are replaced atomically, so a summary read while runs go on never sees half a file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from genjax.config import ConfigError
from genjax.run import workdir as workdir_lib

MANIFEST = 'sweep.json'
STATUS = 'sweep_status.json'
LOG = 'sweep.log'
SWEEP_LOCK = '.sweep.lock'
RUN_LOCK = '.run.lock'


# Another process holds the lock of a sweep directory or run.
SweepBusyError = workdir_lib.WorkdirBusyError


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """Everything a process needs to run one point, on this machine or a SLURM node."""

  sweep_dir: str  # absolute
  name: str  # the sub-workdir under sweep_dir
  config: str  # the config file (absolute), with its ':argument' if any
  overrides: dict[str, str]  # common --config.* overrides, as command-line strings
  point: dict[str, Any]  # this run's overrides, typed as the config types them
  repo_root: str  # where `python -m launch.main` runs

  @property
  def run_dir(self) -> Path:
    return Path(self.sweep_dir) / self.name

  def record(self) -> dict[str, Any]:
    """The manifest entry: what makes this run this run (not where it runs from)."""
    return {
      'name': self.name,
      'config': self.config,
      'overrides': dict(self.overrides),
      'point': _jsonable(self.point),
    }


def _jsonable(value: Any) -> Any:
  return json.loads(json.dumps(value))  # tuples -> lists, as they read back


def write_json(path: Path, data: Any) -> None:
  tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
  tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + '\n')
  os.replace(tmp, path)


def read_json(path: Path) -> Any:
  try:
    return json.loads(path.read_text())
  except FileNotFoundError:
    return None
  except json.JSONDecodeError as e:
    raise ConfigError(f'{path} is damaged ({e}); delete it to start that part over.') from None


def read_manifest(sweep_dir: str | os.PathLike) -> list[dict[str, Any]]:
  data = read_json(Path(sweep_dir) / MANIFEST)
  return [] if data is None else data['runs']


def _describe(runs: list[dict[str, Any]]) -> str:
  configs = sorted({r['config'] for r in runs})
  overrides = sorted(
    {
      ' '.join(f'--config.{k}={v}' for k, v in r['overrides'].items()) or 'no overrides'
      for r in runs
    }
  )
  return (
    f'{len(runs)} run{"s" * (len(runs) != 1)} of {", ".join(configs)} with {"; ".join(overrides)}'
  )


def merge_manifest(
  sweep_dir: str | os.PathLike, runs: list[RunSpec], *, add: bool, command: str = ''
) -> list[dict[str, Any]]:
  """Records `runs` in DIR/sweep.json; refuses a different sweep unless `add`.

  A sweep whose runs are all there already, with the same config and overrides, resumes
  (the same command again, or any earlier command after an `add`). With `add`, new runs join
  the ones already there; a run whose name is taken by a run with another config or
  other common overrides is refused even then, since they would share a workdir.
  """
  sweep_dir = Path(sweep_dir)
  data = read_json(sweep_dir / MANIFEST)
  new = [r.record() for r in runs]
  if data is None:
    if (sweep_dir / 'config.json').exists():
      raise ConfigError(
        f'{sweep_dir} is a training workdir (it has config.json), not a '
        'sweep\'s; use another --workdir.'
      )
    data = {'runs': [], 'commands': []}
  old = {r['name']: r for r in data['runs']}
  same = [r for r in new if old.get(r['name']) == r]
  # Every run already there as it is: the same command again (or one that added to it).
  if old and len(same) < len(new) and not add:
    raise ConfigError(
      f'{sweep_dir} holds a different sweep ({_describe(data["runs"])}); this one is '
      f'{_describe(new)}, {len(same)} of them already there. Pass --add to add this '
      'sweep\'s runs to it, or use another --workdir.'
    )
  for r in new:
    if r['name'] in old and old[r['name']] != r:
      was = old[r['name']]
      raise ConfigError(
        f'run {r["name"]} already exists in {sweep_dir} with config {was["config"]} and '
        f'overrides {was["overrides"]}; this sweep runs it with {r["config"]} and '
        f'{r["overrides"]}. They cannot share a workdir: use another --workdir.'
      )
  data['runs'] += [r for r in new if r['name'] not in old]
  sweep_dir.mkdir(parents=True, exist_ok=True)
  if command:
    data['commands'].append(command)
  write_json(sweep_dir / MANIFEST, data)
  return data['runs']


def read_status(run_dir: str | os.PathLike) -> dict[str, Any]:
  status = read_json(Path(run_dir) / STATUS)
  return status if status is not None else {'status': 'pending', 'attempts': 0, 'wall_seconds': 0.0}


def write_status(run_dir: str | os.PathLike, status: dict[str, Any]) -> None:
  write_json(Path(run_dir) / STATUS, status)


def sweep_lock(sweep_dir: str | os.PathLike) -> contextlib.AbstractContextManager[None]:
  """One launch.sweep at a time per directory; a second gets SweepBusyError at once."""
  return workdir_lib.flock(
    Path(sweep_dir) / SWEEP_LOCK,
    f'another launch.sweep ({{holder}}) is working on {sweep_dir}; wait for it to '
    'finish (or stop it), or use another --workdir. `--summarize` works meanwhile.',
  )


def run_lock(run_dir: str | os.PathLike) -> contextlib.AbstractContextManager[None]:
  return workdir_lib.flock(Path(run_dir) / RUN_LOCK, f'{run_dir} is being run by {{holder}}.')
