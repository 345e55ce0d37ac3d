"""Result records: every published figure with the provenance needed to trust or redo it.

A record is `results/NAME.json`, written by the script that measured it (`bench.results`
for the experiments, the benchmarks for theirs). Besides the figures it holds the exact
commands, the git commit and whether the code it ran had uncommitted changes, the machine
(CPU model, cores, XLA devices, load average when it started), the library versions, the
date and the wall times. It also lists the repository files whose code the measurement
ran (`code`): a record is *stale* once a later commit changes the code of one of them (a
Python file whose syntax tree is the same, with only comments, layout or docstrings edited,
does not count), and the tables in docs/results.md say so.

The file list is the static import closure of the measurement's entry modules. Families
and datasets are imported by name through registries, so an entry names the ones it uses,
and the registries' tables are left out (NOT_CODE): a record of the VAE on MNIST then does
not go stale when a new family is added. Library versions are the environment, kept in
each record (`versions`), not code: setup.cfg is left out too.
"""

from __future__ import annotations

import ast
import importlib
import datetime
import functools
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any, Iterable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, 'results')
PACKAGES = ('genjax', 'launch', 'experiments', 'bench')
# Files that are not code a measurement runs: the registries are name -> module tables (a
# new entry changes no measured code; the entry's own modules are in its closure), and
# setup.cfg's pins are environment, which each record keeps as the versions it ran with.
NOT_CODE = (
  'genjax/tasks/families.py',
  'genjax/data/registry.py',
  'genjax/models/registry.py',
  'setup.cfg',
)
LIBRARIES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'numpy', 'torch')


def _git(*args: str) -> str:
  return subprocess.run(
    ['git', *args], cwd=ROOT, capture_output=True, text=True, check=True
  ).stdout.rstrip('\n')  # not strip(): status lines begin with a space


def cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
  found = {'python': platform.python_version()}
  for name in LIBRARIES:
    try:
      found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      continue
  return found


def _module_file(module: str) -> str | None:
  base = os.path.join(ROOT, *module.split('.'))
  for path in (base + '.py', os.path.join(base, '__init__.py')):
    if os.path.isfile(path):
      return path
  return None


def _lazy_exports(package: str) -> dict[str, str]:
  """A package's `_EXPORTS` (name -> submodule): the names its __init__ imports on first use."""
  path = _module_file(package)
  if path is None or not path.endswith('__init__.py'):
    return {}
  return dict(getattr(importlib.import_module(package), '_EXPORTS', {}))


def _imports(module: str, path: str) -> Iterable[str]:
  """Every module name an import statement in `path` could mean (module or attribute)."""
  package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
  with open(path, encoding='utf-8') as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parts = package.split('.')[: len(package.split('.')) - node.level + 1]
        base = '.'.join(parts + ([base] if base else []))
      yield base
      lazy = _lazy_exports(base) if base.split('.')[0] in PACKAGES else {}
      for alias in node.names:
        yield f'{base}.{lazy.get(alias.name, alias.name)}'


def code_closure(modules: Iterable[str]) -> list[str]:
  """Repository files (relative paths) that importing `modules` runs."""
  seen: dict[str, str] = {}
  todo = list(modules)
  while todo:
    module = todo.pop()
    if module in seen or module.split('.')[0] not in PACKAGES:
      continue
    path = _module_file(module)
    if path is None:
      continue
    seen[module] = path
    parents = module.split('.')
    todo.extend('.'.join(parents[:i]) for i in range(1, len(parents)))  # __init__ runs too
    todo.extend(_imports(module, path))
  return sorted({os.path.relpath(p, ROOT) for p in seen.values()} - set(NOT_CODE))


def git_state(code: list[str]) -> dict[str, Any]:
  dirty = _git('status', '--porcelain', '--', *code).splitlines()
  return {
    'commit': _git('rev-parse', 'HEAD'),
    'dirty': bool(_git('status', '--porcelain', '--untracked-files=no')),
    'uncommitted_code': sorted(line[3:] for line in dirty),
  }


def provenance(code: list[str]) -> dict[str, Any]:
  """Everything about where and on what a measurement ran, taken when it starts."""
  return {
    'git': git_state(code),
    'machine': {
      'cpu': cpu_model(),
      'cores': os.cpu_count(),
      'platform': platform.platform(),
      'load_average_at_start': [round(x, 2) for x in os.getloadavg()],
      'xla_flags': os.environ.get('XLA_FLAGS', ''),
    },
    'versions': versions(),
    'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    'code': code,
  }


class OtherLoad:
  """The CPU time that processes other than ours used while a measurement ran.

  The system's busy CPU time (/proc/stat) minus our children's (getrusage), as a share of
  all cores over the wall time: 0 on an idle machine, and about 0.5 when another job kept
  one of two cores busy. A timing taken beside other jobs is then visible in its record.
  """

  def __enter__(self):
    self.start = self._sample()
    return self

  def __exit__(self, *exc):
    end = self._sample()
    wall, busy, ours = (e - s for e, s in zip(end, self.start))
    self.share = max(busy - ours, 0.0) / max(wall * (os.cpu_count() or 1), 1e-9)

  @staticmethod
  def _sample() -> tuple[float, float, float]:
    import resource  # pylint: disable=import-outside-toplevel (POSIX only)
    import time  # pylint: disable=import-outside-toplevel

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
      with open('/proc/stat') as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
      # user nice system idle iowait irq softirq steal: all but idle and iowait are busy
      busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError, IndexError):
      busy = float('nan')
    return time.monotonic(), busy, children.ru_utime + children.ru_stime


def write(name: str, record: dict[str, Any]) -> str:
  os.makedirs(RESULTS_DIR, exist_ok=True)
  path = os.path.join(RESULTS_DIR, f'{name}.json')
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(dict(record, name=name), f, indent=2, sort_keys=False)
    f.write('\n')
  os.replace(tmp, path)  # a record is whole or absent, never half written
  return path


def load_all() -> dict[str, dict[str, Any]]:
  found = {}
  if os.path.isdir(RESULTS_DIR):
    for entry in sorted(os.listdir(RESULTS_DIR)):
      if entry.endswith('.json'):
        with open(os.path.join(RESULTS_DIR, entry)) as f:
          found[entry[: -len('.json')]] = json.load(f)
  return found


def _syntax(commit: str, path: str) -> str | None:
  """`path`'s Python syntax tree at `commit` (no comments, layout or docstrings); None if
  it has none."""
  if not path.endswith('.py'):
    return None
  try:
    return ast.dump(_without_docstrings(ast.parse(_git('show', f'{commit}:{path}'))))
  except (subprocess.CalledProcessError, SyntaxError):  # absent then, or not Python
    return None


def _without_docstrings(tree: ast.Module) -> ast.Module:
  """The tree less its module, class and function docstrings: documentation, which no
  measurement runs (a usage line in launch/main.py's docstring is not a new program)."""
  for node in ast.walk(tree):
    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
      body = node.body
      if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
          node.body = body[1:]
  return tree


def _same_syntax(since: str, path: str) -> bool:
  before = _syntax(since, path)
  return before is not None and before == _syntax('HEAD', path)


@functools.lru_cache(maxsize=None)
def _commits_touching(since: str, paths: tuple[str, ...]) -> str | None:
  """'hash subject' of the newest commit after `since` touching a file of `paths` whose
  code changed since then; None if there is none.

  A Python file whose syntax tree is unchanged but for docstrings (comments, layout or
  docstrings edited) still runs the same program, so it does not count.
  """
  try:
    if not _git('log', '-1', '--format=%h', f'{since}..HEAD', '--', *paths):
      return None
  except subprocess.CalledProcessError:  # the commit is not in this history
    return f'{since[:7]} is not an ancestor of HEAD'
  changed = [
    path
    for path in _git('diff', '--name-only', since, 'HEAD', '--', *paths).splitlines()
    if not _same_syntax(since, path)
  ]
  if not changed:
    return None
  return _git('log', '-1', '--format=%h %s', f'{since}..HEAD', '--', *changed) or None


def staleness(record: dict[str, Any]) -> str | None:
  """Why the record no longer describes the current code, or None if it does."""
  git = record['git']
  if git['uncommitted_code']:
    return 'measured with uncommitted changes to ' + ', '.join(git['uncommitted_code'][:3])
  code = tuple(f for f in record['code'] if f not in NOT_CODE)  # as the rules are now
  later = _commits_touching(git['commit'], code)
  return f'code changed since ({later})' if later else None


def python() -> str:
  """How the records spell the interpreter in a command (`python`, as a user types it)."""
  return 'python' if os.path.basename(sys.executable).startswith('python') else sys.executable
