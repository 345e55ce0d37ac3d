"""Which part of the standard library is a function from? Labelled code for classifiers.

Every function and method of this interpreter's standard library (`.py` files; its own
test suite left out) is one example, found with `ast` as `genjax.data.docstrings` finds
them: the source (docstring removed, dedented) labelled by the top-level module family of
its file ('asyncio' for asyncio/base_events.py, 'email' for email/mime/text.py, 'os' for
os.py). The classes are the `data.num_classes` families whose training files define
the most functions; the other families' functions are left out.

The names of the function's own module are hidden from its text, each replaced by `_`:
the family (anywhere in an identifier when it is 4 letters or longer, 'asyncio_mode' ->
'__mode'; as a whole identifier part when shorter, so 'os.path' -> '_.path' but 'close'
stays) and the other parts of the module's path (whole identifier parts: 'mime', 'text'
for email/mime/text.py). Identifier parts are separated by anything but letters and
digits, underscores included; a short family inside a CamelCase name ('XMLParser') stays.

Whole files go to one split by the stable hash of their path, the split of the
`python_code` corpus: its training files are 'train' here, its validation files 'test'
and 'final_test' (5% each), so an encoder pretrained on python_code has never seen a
held-out function. `data.num_labels_per_class` = K keeps K training functions per class
(the first in a fixed order, `data.subset_seed`): the few-labels setting.

Tokens: the tokenizer saved in `<workdir>/tokenizer/` when there is one (a fine-tuned run
finds there the one its pretrained encoder learned with: `config.init_from` copies it),
else a SentencePiece BPE trained on the training functions as python_code trains its own.
Each function is cut to its first `data.max_length` tokens and padded with 0.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hashlib
import logging
import pathlib
import re

import ml_collections
import numpy as np

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.data import docstrings, files
from genjax.data.spec import Dataset, DataSpec, Feature
from genjax.data.tokenizers import SentencePieceTokenizer, load_tokenizer

TOKENIZER_DIR = 'tokenizer'
PAD_ID = 0  # the tokenizer's <unk>, which byte fallback never produces
SPLITS = ('train', 'test', 'final_test')
HIDDEN = '_'
_SKIPPED_PARTS = ('__init__', '__main__')

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Example:
  text: str  # the function's source with its module's names hidden
  family: str  # the label's name
  where: str  # relative path and function number in the file: a stable identity


def family_of(relpath: str) -> str:
  """The top-level package or module of a file: 'xml/dom/minidom.py' -> 'xml'."""
  first = relpath.split('/')[0]
  return first[: -len('.py')] if first.endswith('.py') else first


def module_names(relpath: str) -> list[str]:
  """The names of a file's module path, each also without its leading underscores:
  'email/mime/text.py' -> ['email', 'mime', 'text']."""
  parts = relpath[: -len('.py')].split('/') if relpath.endswith('.py') else relpath.split('/')
  names = []
  for part in parts:
    for name in (part, part.lstrip('_')):
      if name and name not in _SKIPPED_PARTS and name not in names:
        names.append(name)
  return names


@functools.lru_cache(maxsize=256)
def _hider(family: str, others: tuple[str, ...]) -> re.Pattern:
  anywhere = [re.escape(n) for n in (family, family.lstrip('_')) if len(n.lstrip('_')) >= 4]
  as_part = [re.escape(n) for n in (family, *others) if n]
  # Longest first: a name that contains another is replaced whole.
  whole = '|'.join(sorted(set(as_part), key=len, reverse=True))
  pattern = rf'(?<![A-Za-z0-9])(?:{whole})(?![A-Za-z0-9])'
  if anywhere:
    pattern = '|'.join(sorted(set(anywhere), key=len, reverse=True)) + '|' + pattern
  return re.compile(pattern, re.IGNORECASE)


def hide_module_names(text: str, relpath: str) -> str:
  """`text` with the names of the module at `relpath` replaced by `_` (see module doc)."""
  names = module_names(relpath)
  return _hider(family_of(relpath), tuple(names)).sub(HIDDEN, text)


# A function definition's line: how the classes are ranked without parsing every file.
_DEF_LINE = re.compile(r'^[ \t]*(?:async[ \t]+)?def[ \t]', re.MULTILINE)


@functools.lru_cache(maxsize=1)  # the library's files do not change while a process runs
def _sources() -> dict[str, dict[str, str]]:
  """{split: {relative path: source}} of the library's readable .py files (tests left out)."""
  root, splits = docstrings.stdlib_splits(include_tests=False)
  by_split = {}
  for split in SPLITS:
    by_split[split] = {}
    for rel in sorted(splits[split]):
      try:
        by_split[split][rel] = (root / rel).read_text(encoding='utf-8')
      except (UnicodeDecodeError, OSError):
        continue
  return by_split


def top_families(n: int) -> list[str]:
  """The `n` families whose training files define the most functions (their `def` lines:
  counted without parsing, so that only the chosen families' files are parsed), most
  first, ties by name."""
  counts: collections.Counter = collections.Counter()
  for rel, source in _sources()['train'].items():
    counts[family_of(rel)] += len(_DEF_LINE.findall(source))
  ranked = sorted(((f, c) for f, c in counts.items() if c), key=lambda item: (-item[1], item[0]))
  if len(ranked) < n:
    raise ConfigError(
      f'config.data.num_classes={n}, but the training split has functions of only '
      f'{len(ranked)} module families; use at most {len(ranked)}.'
    )
  return [family for family, _ in ranked[:n]]


@functools.lru_cache(maxsize=4)  # parsing takes seconds
def load_examples(families: tuple[str, ...]) -> dict[str, list[Example]]:
  """The functions of `families` by split, names hidden, in path order. Cached per
  process: callers must not change the lists."""
  wanted = set(families)
  by_split = {}
  for split, sources in _sources().items():
    found = []
    for rel, source in sources.items():
      if family_of(rel) not in wanted:
        continue
      for i, function in enumerate(docstrings.functions(source)):
        if function.code:
          found.append(Example(hide_module_names(function.code, rel), family_of(rel), f'{rel}:{i}'))
    by_split[split] = found
  return by_split


def _stable_order(examples: list[Example], seed: int) -> list[Example]:
  key = lambda e: hashlib.sha1(f'{seed}:{e.where}'.encode()).digest()
  return sorted(examples, key=key)


def labels_per_class(examples: list[Example], k: int) -> list[Example]:
  """The first `k` examples of each family, in the order given (0 keeps all)."""
  if not k:
    return examples
  seen: collections.Counter = collections.Counter()
  kept = []
  for e in examples:
    if seen[e.family] < k:
      seen[e.family] += 1
      kept.append(e)
  return kept


def _tokenizer(data: ml_collections.ConfigDict, texts: list[str], workdir: str | None):
  directory = pathlib.Path(workdir) / TOKENIZER_DIR if workdir else None
  if directory is not None:
    with contextlib.suppress(FileNotFoundError):
      tokenizer = load_tokenizer(directory)
      if tokenizer.kind != 'sentencepiece' or tokenizer.vocab_size != data.vocab_size:
        raise ConfigError(
          f'{directory} holds a {tokenizer.kind} tokenizer of {tokenizer.vocab_size} ids '
          f'(copied there by config.init_from, or from an earlier run), the config asks for '
          f'a sentencepiece one of data.vocab_size={data.vocab_size}: pass '
          f'--config.data.vocab_size={tokenizer.vocab_size} to use it, or use a new workdir.'
        )
      _log.info('Tokenizer (%d ids) loaded from %s.', tokenizer.vocab_size, directory)
      return tokenizer
  # Saved in the workdir with the DataSpec (the loop's spec.save).
  return SentencePieceTokenizer.train(texts, None, int(data.vocab_size))


def encode(tokenizer, texts: list[str], max_length: int) -> np.ndarray:
  """int32 [N, max_length]: each text's first max_length tokens, padded with PAD_ID."""
  out = np.full((len(texts), max_length), PAD_ID, np.int32)
  for row, ids in zip(out, tokenizer.encode_batch(texts)):
    ids = ids[:max_length]
    row[: len(ids)] = ids
  return out


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  config_lib.add_fields(
    c,
    {
      'data.num_classes': 10,  # the most common module families of the training split
      'data.num_labels_per_class': 0,  # K training functions per class; 0 = all of them
      'data.subset_seed': 0,  # which K (a fixed order of the training functions per seed)
      'data.vocab_size': 2048,  # BPE pieces when the workdir has no tokenizer yet
      'data.max_length': 128,  # tokens per function (its first ones); the encoder's positions
      'data.num_train': 0,  # the first N training functions (after K per class); 0 = all
      'data.num_test': 0,  # the first N functions of each held-out split; 0 = all
    },
  )


def dataset(data: ml_collections.ConfigDict, workdir: str | None = None) -> Dataset:
  if data.num_classes < 2:
    raise ConfigError(f'config.data.num_classes={data.num_classes}: a classifier needs >= 2.')
  if data.max_length < 1:
    raise ConfigError(f'config.data.max_length={data.max_length} must be >= 1.')
  classes = top_families(int(data.num_classes))
  by_split = load_examples(tuple(classes))
  index = {family: i for i, family in enumerate(classes)}
  chosen = {}
  for split in SPLITS:
    examples = _stable_order(by_split[split], int(data.subset_seed))
    if split == 'train':
      examples = labels_per_class(examples, int(data.num_labels_per_class))
    cap = data.num_train if split == 'train' else data.num_test
    chosen[split] = examples[:cap] if cap else examples
    if not chosen[split]:
      raise files.DataError(
        f'stdlib_modules: the {split!r} split has no function of the {len(classes)} classes; '
        'raise data.num_train/num_test (0 = all).'
      )
  tokenizer = _tokenizer(data, [e.text for e in chosen['train']], workdir)
  arrays = {
    split: {
      'tokens': encode(tokenizer, [e.text for e in examples], int(data.max_length)),
      'label': np.array([index[e.family] for e in examples], np.int32),
    }
    for split, examples in chosen.items()
  }
  _log.info(
    'stdlib_modules: %d classes (%s); %s functions.',
    len(classes),
    ', '.join(classes),
    ', '.join(f'{split} {len(e):,}' for split, e in chosen.items()),
  )
  spec = DataSpec(
    {
      'tokens': Feature(
        (int(data.max_length),), 'int32', num_values=tokenizer.vocab_size, tokenizer=TOKENIZER_DIR
      ),
      'label': Feature((), 'int32', num_values=len(classes)),
    },
    {TOKENIZER_DIR: tokenizer},
  )
  return Dataset(
    spec=spec,
    splits=arrays,
    extras={'tokenizer': tokenizer, 'class_names': classes, 'examples': chosen},
  )
