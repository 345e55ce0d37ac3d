"""What a sweep is: a list of override dicts, the helpers that build it, and its checks.

An experiment file's `get_sweep()` returns the runs as plain data,

    [{'optim.learning_rate': 1e-3, 'seed': 0}, {'optim.learning_rate': 3e-4, 'seed': 0}, ...]

built with `product`, `zip_axes`, `chain`, `combine` and seeded `random_points`. Plain
lists are the contract, so a sweep can also be written out by hand or filtered with a
list comprehension. `validate` checks the points against the experiment's config before
anything runs; `run_name` names each run's sub-workdir.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import itertools
import math
import random
import re
from typing import Any, Iterable, Mapping, Sequence

import ml_collections

from genjax import config as config_lib
from genjax.config import ConfigError

Point = dict[str, Any]
MAX_NAME = 100  # characters; longer names are cut and made unique by a hash
_SAFE = re.compile(r'[^A-Za-z0-9._+=,-]')


def _axis(name: str, values: Any) -> list[Any]:
  # A string is a sequence too; sweeping 'adam' over its letters is never meant.
  if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
    raise ConfigError(f'sweep axis {name!r} must be a list of values, got {values!r}.')
  values = list(values)
  if not values:
    raise ConfigError(f'sweep axis {name!r} has no values.')
  return values


def product(**axes: Sequence[Any]) -> list[Point]:
  """Every combination: product(a=[1, 2], b=[3, 4]) -> 4 points, the first axis slowest."""
  lists = {name: _axis(name, values) for name, values in axes.items()}
  return [dict(zip(lists, combo)) for combo in itertools.product(*lists.values())]


def zip_axes(**axes: Sequence[Any]) -> list[Point]:
  """Axes side by side: zip_axes(a=[1, 2], b=[3, 4]) -> [{a: 1, b: 3}, {a: 2, b: 4}]."""
  lists = {name: _axis(name, values) for name, values in axes.items()}
  lengths = {name: len(values) for name, values in lists.items()}
  if len(set(lengths.values())) > 1:
    raise ConfigError(f'zip_axes needs axes of one length, got {lengths}.')
  return [dict(zip(lists, combo)) for combo in zip(*lists.values())]


def chain(*sweeps: Sequence[Point]) -> list[Point]:
  """One sweep after another (e.g. a grid plus a few hand-picked points)."""
  return [dict(point) for sweep in sweeps for point in sweep]


def combine(a: Sequence[Point], b: Sequence[Point]) -> list[Point]:
  """Cartesian product of two sweeps, each pair of points merged into one."""
  out = []
  for x in a:
    for y in b:
      shared = set(x) & set(y)
      if shared:
        raise ConfigError(
          f'combine: both sweeps set {sorted(shared)}; a field can come from one side only.'
        )
      out.append({**x, **y})
  return out


@dataclasses.dataclass(frozen=True)
class Distribution:
  """What `random_points` draws a field from; `draw` takes a seeded `random.Random`."""

  kind: str
  low: float = 0.0
  high: float = 0.0
  values: tuple[Any, ...] = ()

  def draw(self, rng: random.Random) -> Any:
    if self.kind == 'uniform':
      return self.low + (self.high - self.low) * rng.random()
    if self.kind == 'log_uniform':
      low, high = math.log(self.low), math.log(self.high)
      return math.exp(low + (high - low) * rng.random())
    return self.values[min(int(rng.random() * len(self.values)), len(self.values) - 1)]


def uniform(low: float, high: float) -> Distribution:
  if not low < high:
    raise ConfigError(f'uniform({low}, {high}) needs low < high.')
  return Distribution('uniform', float(low), float(high))


def log_uniform(low: float, high: float) -> Distribution:
  """Uniform in log space: learning rates, weight decays, anything spanning decades."""
  if not 0 < low < high:
    raise ConfigError(f'log_uniform({low}, {high}) needs 0 < low < high.')
  return Distribution('log_uniform', float(low), float(high))


def choice(values: Sequence[Any]) -> Distribution:
  return Distribution('choice', values=tuple(_axis('choice', values)))


def random_points(n: int, seed: int, **distributions: Distribution) -> list[Point]:
  """`n` points, each field drawn from its distribution; the same seed gives the same points.

  Fields are drawn in the order given from one `random.Random(seed)` (its sequence is
  stable across Python versions), so adding a field at the end keeps the earlier draws.
  """
  if not isinstance(n, int) or n < 1:
    raise ConfigError(f'random_points needs n >= 1, got {n!r}.')
  for name, dist in distributions.items():
    if not isinstance(dist, Distribution):
      raise ConfigError(
        f'random_points: {name}={dist!r} is not a distribution; use '
        'uniform(...), log_uniform(...) or choice([...]).'
      )
  rng = random.Random(seed)
  return [{name: dist.draw(rng) for name, dist in distributions.items()} for _ in range(n)]


def format_value(value: Any) -> str:
  """A value as `--config.FIELD=` takes it (and as run names and tables show it).

  Floats use the shortest repr that reads back exactly (1e-3 -> '0.001'); tuples the
  Python literal ml_collections parses; strings as they are.
  """
  if isinstance(value, bool) or isinstance(value, (int, str)):
    return str(value)
  if isinstance(value, float):
    return repr(value)
  if isinstance(value, (tuple, list)):
    return repr(tuple(value))
  raise ConfigError(f'cannot pass {value!r} ({type(value).__name__}) on the command line.')


def _name_value(value: Any) -> str:
  # Readable in a path: (16, 32) -> 16x32; anything unsafe is replaced below (plus a hash).
  if isinstance(value, (tuple, list)) and all(isinstance(v, (int, float)) for v in value):
    return 'x'.join(format_value(v) for v in value) if value else 'empty'
  if isinstance(value, str) and (',' in value or '=' in value):
    return repr(value)  # quotes are unsafe: the name gets a hash, so it cannot pose as two fields
  return format_value(value)


def run_name(point: Mapping[str, Any]) -> str:
  """A stable, filesystem-safe, unique name: sorted `field=value` joined by ','.

  The same point always gets the same name (so a rerun finds its workdir). When a value
  needs characters a path should not hold, or the name passes MAX_NAME characters, the
  name is cut and a short hash of the full name keeps it unique.
  """
  if not point:
    return 'base'
  raw = ','.join(f'{key}={_name_value(point[key])}' for key in sorted(point))
  safe = _SAFE.sub('_', raw)
  if safe == raw and len(raw) <= MAX_NAME:
    return raw
  digest = hashlib.sha1(raw.encode('utf-8')).hexdigest()[:8]
  return f'{safe[: MAX_NAME - 9]}-{digest}'


def _fields(config: ml_collections.ConfigDict) -> list[str]:
  return sorted(config_lib.flatten(config))


def _set_field(config: ml_collections.ConfigDict, field: str, value: Any) -> Any:
  """Sets `field` (dotted) with the ConfigDict's own type checks; returns the stored value."""
  if not isinstance(field, str) or not field:
    raise ConfigError(f'sweep field {field!r} must be a dotted config field name.')
  parts = field.split('.')
  node = config
  for depth, part in enumerate(parts):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      close = difflib.get_close_matches(field, _fields(config), n=3)
      hint = f' Did you mean {" or ".join(close)}?' if close else ''
      raise ConfigError(f'sweep field {field!r} is not in the config.{hint}')
    if depth < len(parts) - 1:
      node = node[part]
  last = parts[-1]
  current = node[last]
  if isinstance(current, ml_collections.ConfigDict):
    raise ConfigError(
      f'sweep field {field!r} is a config section; sweep its fields '
      f'({", ".join(sorted(current.keys())[:4])}, ...) instead.'
    )
  if hasattr(value, 'item') and getattr(value, 'shape', None) == ():
    value = value.item()  # numpy scalars: repr(np.float64(0.1)) is not a flag value
  if value is None:
    raise ConfigError(f'sweep field {field!r}: None cannot be passed on the command line.')
  # ConfigDict accepts True for an int field (bool is an int); the command line would not.
  if isinstance(value, bool) != isinstance(current, bool) and current is not None:
    raise ConfigError(
      f'sweep field {field!r}={value!r}: the config holds {type(current).__name__} ({current!r}).'
    )
  try:
    node[last] = value
  except TypeError:
    raise ConfigError(
      f'sweep field {field!r}={value!r} ({type(value).__name__}): the config '
      f'holds {type(current).__name__} ({current!r}).'
    ) from None
  stored = node[last]
  format_value(stored)  # fails now, not when the run starts, if it cannot be passed
  return stored


def validate(config: ml_collections.ConfigDict, points: Any) -> list[Point]:
  """Checks a sweep against its experiment's config; returns the points as the config types them.

  Every field must exist and each value fit its type (an int into a float field is
  fine and becomes a float, a list into a tuple field a tuple), every point must pass
  `genjax.config.validate`, the sweep must not be empty, and no two points may be equal.
  Raises ConfigError naming the point and field.
  """
  if isinstance(points, Mapping) or not isinstance(points, Iterable):
    raise ConfigError(
      f'get_sweep() must return a list of override dicts, got {type(points).__name__}.'
    )
  points = list(points)
  if not points:
    raise ConfigError('the sweep is empty: get_sweep() returned no points.')
  typed, names = [], {}
  for index, point in enumerate(points):
    if not isinstance(point, Mapping):
      raise ConfigError(f'sweep point {index} is {point!r}, not a dict of overrides.')
    trial = copy.deepcopy(config)
    try:
      fixed = {field: _set_field(trial, field, value) for field, value in point.items()}
      config_lib.validate(trial)
    except ConfigError as e:
      raise ConfigError(f'sweep point {index} {dict(point)}: {e}') from None
    name = run_name(fixed)
    if name in names:
      raise ConfigError(f'sweep points {names[name]} and {index} are the same run ({name}).')
    names[name] = index
    typed.append(fixed)
  return typed
