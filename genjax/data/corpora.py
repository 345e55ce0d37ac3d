"""Text corpora as documents, split into training and validation sides.

`load_corpus(config.data)` reads the corpus that `config.data` names and returns a
`Corpus`: lists of documents (text) for each side. The corpora:

- 'tinyshakespeare': one file (downloaded and checked by SHA-256); the first
  `1 - val_fraction` of its characters train, the rest validates (nanoGPT's split).
- 'python_stdlib': every `.py` file of this interpreter's standard library (no
  site-packages); whole files go to one side by a stable hash of their relative path.
- 'text' (or any non-empty `path`): a file (split by characters as above), a folder (its
  files, recursively) or a glob (split by file as for the stdlib).

The split is deterministic: by character offset for one file, by a stable hash (not
Python's salted `hash()`) of each relative path for several, so it is the same in every
process and run. Files that are not UTF-8 text are skipped.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import logging
import os
import pathlib
import sys
import sysconfig

import ml_collections

from genjax.config import ConfigError
from genjax.data import files

NAMES = ('tinyshakespeare', 'python_stdlib', 'text')

_SHAKESPEARE_RELPATH = 'tinyshakespeare/input.txt'
_SHAKESPEARE_SHA256 = '86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed'
_SHAKESPEARE_URLS = (
  'https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt',
)
_EXCLUDED_DIRS = ('site-packages', 'dist-packages')

_log = logging.getLogger(__name__)


@dataclasses.dataclass
class Corpus:
  """A corpus as documents (text) on each side of the split."""

  train: list[str]
  val: list[str]
  description: str


def _read_utf8(path: pathlib.Path) -> str | None:
  try:
    return path.read_text(encoding='utf-8')
  except UnicodeDecodeError:
    return None


def _in_validation(relpath: str, val_fraction: float) -> bool:
  # A stable hash (not Python's salted hash()): the split is the same in every process
  # and every run, and a file keeps its side when others are added.
  return _hash_key(relpath) < val_fraction * 1000


def _hash_key(relpath: str) -> int:
  return int(hashlib.sha1(relpath.encode('utf-8')).hexdigest(), 16) % 1000


def _sample_sizes(max_files: int, val_fraction: float) -> tuple[int, int]:
  num_val = max(1, round(max_files * val_fraction))
  return max(1, max_files - num_val), num_val


def split_files(
  relpaths: list[str], val_fraction: float, max_files: int = 0
) -> tuple[list[str], list[str]]:
  """(train, validation) relative paths in hash order; deterministic in the paths alone.

  A file validates iff its stable hash bucket is below `val_fraction`. With few files a
  side may come out empty; then the file with the lowest (highest) hash moves over, so
  that both sides have one. `max_files` > 0 keeps a fixed sample of that many files (the
  first in hash order, about `val_fraction` of them validation), for tests and quick runs.
  """
  if len(relpaths) < 2:
    raise files.DataError(f'Splitting by file needs at least 2 files, got {len(relpaths)}.')
  by_hash = sorted(
    set(relpaths), key=lambda r: (_hash_key(r), hashlib.sha1(r.encode('utf-8')).digest())
  )
  val = [r for r in by_hash if _in_validation(r, val_fraction)]
  train = [r for r in by_hash if not _in_validation(r, val_fraction)]
  if not val:
    val, train = train[:1], train[1:]
  if not train:
    train, val = val[-1:], val[:-1]
  if max_files:
    num_train, num_val = _sample_sizes(max_files, val_fraction)
    train, val = train[:num_train], val[:num_val]
  return train, val


def _read_documents(
  root: pathlib.Path, relpaths: list[str], limit: int = 0
) -> tuple[list[str], list[str]]:
  """(relpaths, texts) of the first `limit` (0: all) files that are UTF-8 text, sorted.

  Other files (binary, another encoding) are skipped and counted in a log line.
  """
  kept, skipped = {}, []
  for rel in relpaths:
    if limit and len(kept) == limit:
      break
    text = _read_utf8(root / rel)
    if text is None:
      skipped.append(rel)
    else:
      kept[rel] = text
  if skipped:
    _log.info('Skipped %d file(s) that are not UTF-8 text, e.g. %s.', len(skipped), skipped[0])
  order = sorted(kept)  # documents in path order, whatever order they were picked in
  return order, [kept[r] for r in order]


def _split_by_file(
  root: pathlib.Path, relpaths: list[str], val_fraction: float, max_files: int, what: str
) -> Corpus:
  if max_files:
    # Read only the sample: the first readable files of each side in hash order.
    train_rel, val_rel = split_files(relpaths, val_fraction)
    num_train, num_val = _sample_sizes(max_files, val_fraction)
    _, train = _read_documents(root, train_rel, num_train)
    _, val = _read_documents(root, val_rel, num_val)
  else:
    # Unreadable files are dropped before the split, so that neither side ends up empty
    # because of them.
    readable, docs = _read_documents(root, relpaths)
    by_path = dict(zip(readable, docs))
    train_rel, val_rel = split_files(readable, val_fraction) if len(readable) >= 2 else ([], [])
    train = [by_path[r] for r in sorted(train_rel)]
    val = [by_path[r] for r in sorted(val_rel)]
  if not train or not val:
    raise files.DataError(
      f'{what}: no readable UTF-8 file on the '
      f'{"training" if not train else "validation"} side of the split; '
      'add text files (at least 2 in all).'
    )
  return Corpus(train, val, f'{what}: {len(train)} training and {len(val)} validation files')


def _split_by_chars(text: str, val_fraction: float, what: str) -> Corpus:
  n_train = int(len(text) * (1 - val_fraction))
  return Corpus(
    [text[:n_train]],
    [text[n_train:]],
    f'{what}: {n_train} training and {len(text) - n_train} validation characters',
  )


def _tinyshakespeare(root: pathlib.Path, val_fraction: float) -> Corpus:
  path = files.fetch_verified(root, _SHAKESPEARE_RELPATH, _SHAKESPEARE_SHA256, _SHAKESPEARE_URLS)
  return _split_by_chars(path.read_text(encoding='utf-8'), val_fraction, 'tinyshakespeare')


def stdlib_files() -> tuple[pathlib.Path, list[str]]:
  """This interpreter's standard library: (root, sorted relative paths of its .py files)."""
  root = pathlib.Path(sysconfig.get_paths()['stdlib'])
  relpaths = []
  for path in root.rglob('*.py'):
    rel = path.relative_to(root)
    if any(part in _EXCLUDED_DIRS for part in rel.parts) or not path.is_file():
      continue
    relpaths.append(rel.as_posix())
  return root, sorted(relpaths)


def _python_stdlib(val_fraction: float, max_files: int) -> Corpus:
  root, relpaths = stdlib_files()
  if not relpaths:
    raise files.DataError(
      f'No .py files under the standard library {root}; this Python '
      'installation has no sources. Use another corpus (config.data.path).'
    )
  version = '.'.join(map(str, sys.version_info[:3]))
  corpus = _split_by_file(root, relpaths, val_fraction, max_files, f'python_stdlib {version}')
  _log.info('%s (of %d .py files under %s).', corpus.description, len(relpaths), root)
  return corpus


def _is_glob(path: str) -> bool:
  return any(c in path for c in '*?[')


def _glob_root(pattern: str) -> pathlib.Path:
  """The folder before the first wildcard: 'corpus/**/*.txt' -> corpus.

  Paths relative to it are what the split hashes, so a glob and its folder split alike.
  """
  parts = pathlib.Path(pattern).parts
  fixed = []
  for part in parts[:-1]:
    if _is_glob(part):
      break
    fixed.append(part)
  return pathlib.Path(os.path.abspath(pathlib.Path(*fixed) if fixed else '.'))


def _user_files(path: str) -> tuple[pathlib.Path, list[str]]:
  """(root, sorted relative paths) that `path` (a file, folder or glob) names."""
  expanded = os.path.expanduser(path)
  if os.path.isfile(expanded):
    p = pathlib.Path(expanded)
    return p.parent, [p.name]
  if os.path.isdir(expanded):
    root = pathlib.Path(os.path.abspath(expanded))
    # Hidden files and folders (.git, editor state) are not corpus text.
    found = [
      p
      for p in root.rglob('*')
      if p.is_file() and not any(part.startswith('.') for part in p.relative_to(root).parts)
    ]
  elif _is_glob(expanded):
    root = _glob_root(expanded)
    found = [
      pathlib.Path(os.path.abspath(p))
      for p in glob.glob(expanded, recursive=True)
      if os.path.isfile(p)
    ]
  else:
    raise files.DataError(
      f'config.data.path={path!r} is not a file, a folder or a glob '
      'pattern that exists; give the path of the training text.'
    )
  return root, sorted(p.relative_to(root).as_posix() for p in found)


def _text_corpus(path: str, val_fraction: float, max_files: int) -> Corpus:
  root, relpaths = _user_files(path)
  if not relpaths:
    raise files.DataError(
      f'config.data.path={path!r} matches no files; check the path or '
      'the pattern (use ** with a folder to match files in subfolders).'
    )
  if len(relpaths) == 1:
    text = _read_utf8(root / relpaths[0])
    if text is None:
      raise files.DataError(f'{root / relpaths[0]} is not UTF-8 text; convert it to UTF-8.')
    return _split_by_chars(text, val_fraction, str(root / relpaths[0]))
  corpus = _split_by_file(root, relpaths, val_fraction, max_files, f'{path} ({root})')
  _log.info('%s (of %d files).', corpus.description, len(relpaths))
  return corpus


def _cap_chars(docs: list[str], max_chars: int) -> list[str]:
  """The first `max_chars` characters of the documents (the last one cut short)."""
  if not max_chars:
    return docs
  kept, left = [], max_chars
  for doc in docs:
    if left <= 0:
      break
    kept.append(doc[:left])
    left -= len(kept[-1])
  return kept


def load_corpus(data: ml_collections.ConfigDict) -> Corpus:
  """The documents `data` names, split; `max_train_chars` caps the training side only."""
  name, path = data.get('name', ''), data.get('path', '') or ''
  val_fraction = float(data.get('val_fraction', 0.1))
  if not 0 < val_fraction < 1:
    raise ConfigError(
      f'config.data.val_fraction={val_fraction} must be in (0, 1): both the '
      'training and the validation side need text.'
    )
  max_files = int(data.get('max_files', 0) or 0)
  if path:
    corpus = _text_corpus(path, val_fraction, max_files)
  elif name == 'tinyshakespeare':
    corpus = _tinyshakespeare(files.resolve_data_dir(data.get('dir', '')), val_fraction)
  elif name == 'python_stdlib':
    corpus = _python_stdlib(val_fraction, max_files)
  elif name == 'text':
    raise ConfigError(
      "config.data.name='text' needs config.data.path: a file, a folder or a "
      "glob such as 'corpus/**/*.txt'."
    )
  else:
    raise ConfigError(f'config.data.name={name!r} is not one of {NAMES}.')
  corpus.train = _cap_chars(corpus.train, int(data.get('max_train_chars', 0) or 0))
  return corpus
