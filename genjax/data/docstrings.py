"""Code summarization from the Python standard library: a function -> its docstring's first line.

Every function and method of this interpreter's standard library (`.py` files, no
site-packages) with a docstring is one pair: the source is the function's code with its
docstring removed (dedented, so methods read as functions), the target the docstring's
first line. Whole files go to one split by a stable hash of their path, as the
`python_code` corpus splits (5% test, 5% validation, the rest training), so no split sees
another's file. The standard library's own test suite (`test/`, `tests/`, `idle_test/`,
`test_*.py`) is left out unless `data.include_tests`: its docstrings describe test cases,
not what code does.

Two baselines come with the held-out splits, scored by the family as its outputs are:
`name_words` (the function's name split into words: `get_close_matches` -> "get close
matches") and `nearest_train` (the summary of the training function whose code shares the
most words with it, by Jaccard overlap of their word sets).

The source may carry hints ahead of the code, each a comment line, as retrieval-augmented
code summarizers (Rencos, REDCODER) give them: the name as words (`data.name_hint`), and
the nearest training function's summary (`data.retrieval_hint`). A training function's
neighbour comes from another file, as a held-out function's always does; `launch.sample`
prepares its inputs the same way (`preparation`).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import logging
import pathlib
import re
import textwrap

import ml_collections
import numpy as np

from genjax import config as config_lib
from genjax.data import corpora, files, text_pairs
from genjax.data.spec import Dataset

_TEST_PARTS = ('test', 'tests', 'idle_test')
_WORD = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Function:
  name: str
  code: str  # without its docstring, dedented
  summary: str  # the docstring's first non-empty line; '' without a docstring
  file: str = ''  # its module's path under the library root


def _without_docstring(source_lines: list[str], node) -> str:
  first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
  lines = source_lines[first - 1 : node.end_lineno]  # decorators belong to the code
  body = node.body[0]
  if ast.get_docstring(node, clean=False) is not None and isinstance(body, ast.Expr):
    lines = lines[: body.lineno - first] + lines[body.end_lineno - first + 1 :]
  return textwrap.dedent('\n'.join(lines)).strip('\n')


# The fields that hold statements (a def is a statement, never inside an expression).
_BLOCKS = ('body', 'orelse', 'finalbody', 'handlers', 'cases')


def _statements(tree: ast.AST):
  """Every statement of a module, nested ones included: `ast.walk` over statements only,
  which visits a tenth of the nodes (parsing the whole library took 19 s with ast.walk)."""
  todo = [tree]
  while todo:
    node = todo.pop()
    yield node
    for field in _BLOCKS:
      todo.extend(getattr(node, field, ()))


def functions(source: str) -> list[Function]:
  """The functions and methods of a module's source, in source order (none if it does not
  parse)."""
  try:
    tree = ast.parse(source)
  except (SyntaxError, ValueError):
    return []
  lines = source.split('\n')
  nodes = [n for n in _statements(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
  found = []
  for node in sorted(nodes, key=lambda n: n.lineno):
    doc = ast.get_docstring(node) or ''
    summary = next((line.strip() for line in doc.split('\n') if line.strip()), '')
    found.append(Function(node.name, _without_docstring(lines, node), summary))
  return found


def name_words(name: str) -> str:
  """A function name as words: snake_case and camelCase split, dunders stripped."""
  spaced = re.sub(r'([a-z0-9])([A-Z])', r'\1 \2', name.strip('_'))
  return ' '.join(w.lower() for w in re.split(r'[_\s]+', spaced) if w)


class Neighbours:
  """The training functions' summaries, found by the code words a query shares with them
  (Jaccard overlap of word sets; ties go to the earlier function)."""

  def __init__(self, train: list[Function]):
    self._summaries = [f.summary for f in train]
    self._files = np.asarray([f.file for f in train])
    self._vocabulary: dict[str, int] = {}
    self._train, self._train_sizes = self._bags([f.code for f in train], grow=True)

  def _bags(self, codes: list[str], grow: bool = False):
    """(sparse [codes, vocabulary] word indicators, each code's count of distinct words:
    unknown words too, as they count in the union)."""
    from scipy import sparse  # pylint: disable=import-outside-toplevel (jax's dependency)

    rows, cols, sizes = [], [], []
    for i, code in enumerate(codes):
      words = set(_WORD.findall(code))
      sizes.append(len(words))
      for word in words:
        if grow:
          self._vocabulary.setdefault(word, len(self._vocabulary))
        if word in self._vocabulary:
          rows.append(i)
          cols.append(self._vocabulary[word])
    shape = (len(codes), max(len(self._vocabulary), 1))
    bags = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape)
    return bags, np.asarray(sizes, np.float32)

  def summaries(self, codes: list[str], files: list[str] | None = None) -> list[str]:
    """The nearest training function's summary for each code; with `files`, never one of
    the query's own file (for training functions, whose file is in the index)."""
    found = []
    for start in range(0, len(codes), 512):  # a dense block of 512 x train at a time
      chunk = codes[start : start + 512]
      bags, sizes = self._bags(chunk)
      overlap = (bags @ self._train.T).toarray()
      union = sizes[:, None] + self._train_sizes[None, :] - overlap
      jaccard = overlap / np.maximum(union, 1)
      if files is not None:
        same = np.asarray(files[start : start + 512])[:, None] == self._files[None, :]
        jaccard[same] = -1.0
      found.extend(self._summaries[j] for j in np.argmax(jaccard, axis=1))
    return found


def nearest_summaries(train: list[Function], queries: list[Function]) -> list[str]:
  """For each query, the summary of the training function sharing the most code words
  with it (Jaccard overlap of word sets)."""
  return Neighbours(train).summaries([f.code for f in queries])


_DEF = re.compile(r'^\s*(?:async\s+)?def\s+([A-Za-z_][A-Za-z0-9_]*)', re.MULTILINE)


def with_hints(code: str, name: str | None, neighbour: str | None) -> str:
  """The encoder's source: the hints that are given, one comment line each, then the code."""
  hints = []
  if name is not None:
    hints.append(f'# {name_words(name)}')
  if neighbour is not None:
    hints.append(f'# like: {neighbour}')
  return '\n'.join([*hints, code])


@dataclasses.dataclass(frozen=True)
class CodePreparation(text_pairs.Preparation):
  """A function's code as the summarizer's encoder reads it: with the hints training gave.

  The nearest-summary index is built from this interpreter's library on first use."""

  name_hint: bool = False
  retrieval_hint: bool = False
  include_tests: bool = False

  def source(self, text: str) -> str:
    code = super().source(text)
    found = _DEF.search(code)
    name = (found.group(1) if found else '') if self.name_hint else None
    neighbour = None
    if self.retrieval_hint:
      neighbour = _train_neighbours(self.include_tests).summaries([code])[0]
    return with_hints(code, name, neighbour)


@functools.lru_cache(maxsize=2)
def _train_neighbours(include_tests: bool) -> Neighbours:
  return Neighbours(load_functions(include_tests)['train'])


def preparation(data: ml_collections.ConfigDict) -> CodePreparation:
  """How `launch.sample` prepares a function's code: as training prepared its sources."""
  return CodePreparation(
    name_hint=bool(data.name_hint),
    retrieval_hint=bool(data.retrieval_hint),
    include_tests=bool(data.include_tests),
  )


def is_test_file(relpath: str) -> bool:
  """A file of the standard library's own test suite."""
  parts = relpath.split('/')
  return any(p in _TEST_PARTS for p in parts[:-1]) or parts[-1].startswith('test_')


def stdlib_splits(include_tests: bool) -> tuple[pathlib.Path, dict[str, list[str]]]:
  """(root, {'train', 'test', 'final_test': relative paths}) of the standard library's
  .py files, split by the stable hash of their path as the python_code corpus splits:
  its validation side is 'test' and 'final_test', its training side 'train'."""
  root, relpaths = corpora.stdlib_files()
  if not include_tests:
    relpaths = [r for r in relpaths if not is_test_file(r)]
  if len(relpaths) < 3:
    raise files.DataError(f'The standard library under {root} has too few .py files.')
  rest, final_test = corpora.split_files(relpaths, 0.05)
  # The same stable hash: buckets below 5% are the final test, 5% to 10% validation.
  train, validation = corpora.split_files(rest, 0.10)
  return root, {'train': train, 'test': validation, 'final_test': final_test}


@functools.lru_cache(maxsize=2)  # parsing the library takes seconds; its files do not change
def load_functions(include_tests: bool) -> dict[str, list[Function]]:
  """Documented functions of the standard library, by split ('train', 'test', 'final_test').

  Cached per process: callers must not change the lists.
  """
  root, splits = stdlib_splits(include_tests)
  by_split = {}
  for split, paths in splits.items():
    found = []
    for rel in sorted(paths):
      try:
        source = (root / rel).read_text(encoding='utf-8')
      except (UnicodeDecodeError, OSError):
        continue
      found.extend(
        dataclasses.replace(f, file=rel) for f in functions(source) if f.summary and f.code
      )
    by_split[split] = found
  return by_split


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  text_pairs.add_config_fields(c)
  config_lib.add_fields(
    c,
    {
      'data.include_tests': False,  # the stdlib's test suite too
      'data.name_hint': False,  # '# <the name as words>' ahead of the code
      'data.retrieval_hint': False,  # '# like: <the nearest training summary>' ahead of it
    },
  )
  c.data.lowercase = False
  c.data.moses = False
  c.data.source_lang = ''
  c.data.target_lang = ''
  c.data.max_length = 256


def _hinted_sources(
  data: ml_collections.ConfigDict, by_split: dict[str, list[Function]]
) -> dict[str, list[str]]:
  neighbours = None
  if data.retrieval_hint:
    neighbours = _train_neighbours(bool(data.include_tests))
  sources = {}
  for split, fs in by_split.items():
    codes = [f.code for f in fs]
    found = [None] * len(fs)
    if neighbours is not None:
      # A training function's own summary is in the index: its neighbour comes from
      # another file, as a held-out function's does.
      found = neighbours.summaries(codes, [f.file for f in fs] if split == 'train' else None)
    sources[split] = [
      with_hints(f.code, f.name if data.name_hint else None, n) for f, n in zip(fs, found)
    ]
  return sources


def dataset(data: ml_collections.ConfigDict, workdir: str | None = None) -> Dataset:
  by_split = load_functions(bool(data.include_tests))
  sources = _hinted_sources(data, by_split)
  splits = {
    name: text_pairs.Split(sources[name], [f.summary for f in fs]) for name, fs in by_split.items()
  }
  loaded = text_pairs.pair_dataset(splits, data, workdir, 'stdlib docstrings')
  loaded.extras['prepare'] = preparation(data)  # raw code at sampling time gets the hints
  limit = {name: data.num_test or None for name in ('test', 'final_test')}
  loaded.extras['baselines'] = {
    name: {
      'name_words': [name_words(f.name) for f in by_split[name][: limit[name]]],
      'nearest_train': nearest_summaries(by_split['train'], by_split[name][: limit[name]]),
    }
    for name in ('test', 'final_test')
  }
  return loaded
