"""Token streams for the language model: tokenizer, encoded corpus, training windows.

`load_text(config.data, block_size, workdir)` takes the documents of a corpus
(`corpora.load_corpus`: reading and the train/validation split live there), gets a
tokenizer (loaded from, or built and saved to, `<workdir>/tokenizer/`) and encodes both
sides into 1-D token streams, caching sentencepiece streams beside the tokenizer.

Training reads random contiguous windows of the training stream (`WindowSource`, batch
`s` a pure function of (seed, s)); evaluation scores a fixed set of non-overlapping
windows from the start of the validation stream (the 'test' split).

Documents are joined into one stream with a separator: the end-of-document token for
sentencepiece, a blank line ('\\n\\n') for characters (which have no such token).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pathlib
import shutil
import tempfile

import jax
import ml_collections
import numpy as np

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.data import files, pipeline
from genjax.data.spec import Dataset, DataSpec, Feature
from genjax.data.corpora import Corpus, load_corpus
from genjax.data.tokenizers import (
  CharTokenizer,
  SentencePieceTokenizer,
  TokenizerError,
  load_tokenizer,
)

TOKENIZERS = ('char', 'sentencepiece')
TOKENIZER_DIR = 'tokenizer'
CHAR_SEPARATOR = '\n\n'
_TOKENS_META = 'tokens.json'
# Bump when the way documents become token streams changes: older caches are then stale.
_STREAM_VERSION = 1

_log = logging.getLogger(__name__)

Tokenizer = CharTokenizer | SentencePieceTokenizer


class WindowSource:
  """Random contiguous windows of a token stream; batch `step` depends only on (seed, step).

  Row r of global batch `step` is `tokens[s_r : s_r + block_size + 1]` with the starts
  drawn from `default_rng([seed, step])` for the whole global batch; each process then
  takes its own rows (`pipeline.process_slice`), so the data does not depend on the
  number of processes. Inputs are `[:, :-1]`, targets `[:, 1:]`.
  """

  def __init__(self, tokens: np.ndarray, block_size: int, batch_size: int, seed: int):
    if len(tokens) < block_size + 2:
      raise files.DataError(
        f'The training stream has {len(tokens)} tokens, too few for one window of '
        f'block_size + 1 = {block_size + 1} tokens (plus one start to draw from). Use a '
        'larger corpus (config.data.max_train_chars=0 uses all of it) or a smaller '
        'block_size.'
      )
    self.tokens, self.block_size = tokens, block_size
    self.batch_size, self.seed = batch_size, seed
    self.steps_per_epoch = max(1, len(tokens) // (batch_size * block_size))  # for reports
    self._offsets = np.arange(block_size + 1)

  def starts(self, step: int) -> np.ndarray:
    """The global batch's window starts."""
    rng = np.random.default_rng([self.seed, step])
    return rng.integers(0, len(self.tokens) - self.block_size - 1, size=self.batch_size)

  def batch(self, step: int) -> dict[str, np.ndarray]:
    rows = pipeline.process_slice(self.batch_size)
    starts = self.starts(step)[rows]
    return {
      'tokens': self.tokens[starts[:, None] + self._offsets].astype(np.int32),
      'index': np.arange(rows.start, rows.stop, dtype=np.int32),
    }

  def example(self) -> dict[str, np.ndarray]:
    """Zeros of the global batch's shape: what `init` traces shapes from."""
    return {
      'tokens': np.zeros((self.batch_size, self.block_size + 1), np.int32),
      'index': np.arange(self.batch_size, dtype=np.int32),
    }


# ---------------------------------------------------------------- tokens


def _build_tokenizer(kind: str, data: ml_collections.ConfigDict, corpus: Corpus) -> Tokenizer:
  if kind == 'char':
    # As nanoGPT: the characters of the whole corpus, validation included, so that
    # validation text always encodes (a character unseen in training simply has an
    # untrained embedding).
    return CharTokenizer.from_text(corpus.train + corpus.val)
  # Trained on the training side only: validation stays held out; byte fallback encodes
  # whatever validation characters the training side lacks.
  return SentencePieceTokenizer.train(corpus.train, None, int(data.vocab_size))


def _check_saved(
  tokenizer: Tokenizer, kind: str, data: ml_collections.ConfigDict, directory: pathlib.Path
) -> None:
  fix = (
    f'Use a new workdir, or delete {directory} to build the tokenizer again (the '
    'checkpoints there were trained with the old one).'
  )
  if tokenizer.kind != kind:
    raise ConfigError(
      f'config.data.tokenizer={kind!r}, but {directory} holds a {tokenizer.kind!r} tokenizer. {fix}'
    )
  wanted = int(data.vocab_size)
  if kind == 'sentencepiece' and tokenizer.vocab_size != wanted:
    raise ConfigError(
      f'config.data.vocab_size={wanted}, but the tokenizer in {directory} has '
      f'{tokenizer.vocab_size} pieces. {fix}'
    )


def _save_tokenizer(tokenizer: Tokenizer, directory: pathlib.Path) -> None:
  if directory.is_dir():  # there but empty (or only stale caches): files are atomic
    tokenizer.save(directory)
    return
  # Written in a temp folder then renamed: a crash never leaves half a tokenizer that a
  # resume would load.
  directory.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'.{directory.name}.', dir=directory.parent))
  try:
    tokenizer.save(tmp)
    os.rename(tmp, directory)
  except OSError:
    if not directory.exists():
      raise
    # Another writer got there first; its tokenizer is the same one (deterministic).
  finally:
    if tmp.exists():
      shutil.rmtree(tmp, ignore_errors=True)


def _fingerprint(tokenizer: Tokenizer, corpus: Corpus) -> str:
  """A hash of the documents and the tokenizer: what the cached streams depend on."""
  digest = hashlib.sha256(f'stream v{_STREAM_VERSION}'.encode())
  digest.update(getattr(tokenizer, 'model_proto', b''))
  for side, docs in (('train', corpus.train), ('val', corpus.val)):
    digest.update(f'{side} {len(docs)}'.encode())
    for doc in docs:
      raw = doc.encode('utf-8')
      digest.update(len(raw).to_bytes(8, 'little'))
      digest.update(raw)
  return digest.hexdigest()


def _stream_dtype(vocab_size: int) -> np.dtype:
  return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.int32)


def encode_documents(tokenizer: Tokenizer, docs: list[str]) -> np.ndarray:
  """One token stream: the documents with a separator between them (see module doc)."""
  dtype = _stream_dtype(tokenizer.vocab_size)
  if tokenizer.eos_id is None:
    return tokenizer.encode(CHAR_SEPARATOR.join(docs)).astype(dtype)
  encoded = tokenizer.encode_batch(docs)
  sep = np.array([tokenizer.eos_id], dtype=np.int32)
  parts = []
  for i, ids in enumerate(encoded):
    if i:
      parts.append(sep)
    parts.append(ids)
  return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def _load_cached(directory: pathlib.Path, fingerprint: str):
  try:
    meta = json.loads((directory / _TOKENS_META).read_text(encoding='ascii'))
    if meta.get('fingerprint') != fingerprint:
      return None
    return (
      np.load(directory / 'train_tokens.npy', allow_pickle=False),
      np.load(directory / 'val_tokens.npy', allow_pickle=False),
    )
  except (OSError, ValueError):
    return None  # absent, half-written by an older version, or unreadable: encode again


def _save_cached(
  directory: pathlib.Path, fingerprint: str, train: np.ndarray, val: np.ndarray
) -> None:
  for name, array in (('train_tokens.npy', train), ('val_tokens.npy', val)):
    fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.part', dir=directory)
    try:
      with os.fdopen(fd, 'wb') as f:
        np.save(f, array, allow_pickle=False)
      os.replace(tmp, directory / name)
    except BaseException:
      with contextlib.suppress(OSError):
        os.unlink(tmp)
      raise
  # The fingerprint goes last: a crash before it leaves the old (mismatching) one.
  meta = json.dumps({'fingerprint': fingerprint, 'train': len(train), 'val': len(val)})
  tmp = directory / f'.{_TOKENS_META}.part'
  tmp.write_text(meta + '\n', encoding='ascii')
  os.replace(tmp, directory / _TOKENS_META)


def _encode_corpus(
  tokenizer: Tokenizer, corpus: Corpus, tok_dir: pathlib.Path | None
) -> tuple[np.ndarray, np.ndarray]:
  # Characters encode at memory speed; only BPE streams are worth caching.
  cache = tok_dir is not None and tokenizer.kind == 'sentencepiece'
  fingerprint = _fingerprint(tokenizer, corpus) if cache else ''
  if cache and (cached := _load_cached(tok_dir, fingerprint)) is not None:
    _log.info('Token streams read from %s.', tok_dir)
    return cached
  try:
    train = encode_documents(tokenizer, corpus.train)
    val = encode_documents(tokenizer, corpus.val)
  except TokenizerError as e:
    where = f' (the tokenizer saved in {tok_dir})' if tok_dir is not None else ''
    raise files.DataError(
      f'The corpus does not encode with the tokenizer{where}: {e} If the '
      'corpus changed since that tokenizer was built, use a new '
      'workdir.'
    ) from e
  if cache and jax.process_index() == 0 and tok_dir.is_dir():
    _save_cached(tok_dir, fingerprint, train, val)
  return train, val


def validation_windows(val_tokens: np.ndarray, block_size: int, num_windows: int) -> np.ndarray:
  """int32 [N, block_size + 1]: windows at stride block_size from the stream's start.

  Inputs never overlap (a window's last target is the next window's first input), so
  every validation token is predicted once. `num_windows` 0 takes all that fit.
  """
  available = (len(val_tokens) - 1) // block_size
  if available < 1:
    raise files.DataError(
      f'The validation stream has {len(val_tokens)} tokens, too few for one window of '
      f'block_size + 1 = {block_size + 1} tokens. Raise config.data.val_fraction, use a '
      'larger corpus, or lower block_size.'
    )
  n = min(available, num_windows) if num_windows else available
  starts = np.arange(n) * block_size
  return val_tokens[starts[:, None] + np.arange(block_size + 1)].astype(np.int32)


def load_text(data: ml_collections.ConfigDict, block_size: int, workdir: str | None) -> Dataset:
  """The corpus `data` names as token streams, with its tokenizer and validation windows.

  Config fields (of `config.data`):
    name: 'tinyshakespeare' | 'python_stdlib' | 'text'.
    dir: data root for downloaded corpora ('' -> $GENJAX_DATA_DIR, else ~/.cache/genjax).
    path: '' or a file, a folder or a glob; non-empty overrides `name`.
    tokenizer: 'char' | 'sentencepiece'; vocab_size: BPE pieces (sentencepiece only).
    val_fraction: share of the characters (one file) or files (several) that validate.
    num_val_windows: validation windows kept (0 = all).
    max_train_chars: training characters kept (0 = all), for quick runs.
    max_files: for multi-file corpora, a fixed sample of this many files (0 = all), for
      tests and quick runs.

  The tokenizer: one saved under `<workdir>/tokenizer/` is loaded, so that resume,
  sampling and evaluation use the training tokenizer; otherwise it is built (characters of
  the whole corpus, as nanoGPT; sentencepiece on the training side only) and saved there
  by process 0. Sentencepiece streams are cached there too, keyed by a hash of the
  documents and the model, so a resume does not encode the corpus again.

  Raises:
    ConfigError: unknown name or tokenizer, or a saved tokenizer of another kind/size.
    DataError: missing or empty corpus, or too short for one window.
  """
  kind = data.tokenizer
  if kind not in TOKENIZERS:
    raise ConfigError(f'config.data.tokenizer={kind!r} is not one of {TOKENIZERS}.')
  if block_size < 1:
    raise ConfigError(f'config.data.block_size={block_size} must be >= 1.')
  corpus = load_corpus(data)
  if not any(corpus.train):
    raise files.DataError(f'{corpus.description}: the training side is empty.')

  tok_dir = pathlib.Path(workdir) / TOKENIZER_DIR if workdir else None
  tokenizer = None
  if tok_dir is not None:
    with contextlib.suppress(FileNotFoundError):
      tokenizer = load_tokenizer(tok_dir)
  if tokenizer is not None:
    _check_saved(tokenizer, kind, data, tok_dir)
    _log.info(
      'Tokenizer (%s, %d ids) loaded from %s.', tokenizer.kind, tokenizer.vocab_size, tok_dir
    )
  else:
    tokenizer = _build_tokenizer(kind, data, corpus)
    if tok_dir is not None and jax.process_index() == 0:
      _save_tokenizer(tokenizer, tok_dir)

  train, val = _encode_corpus(tokenizer, corpus, tok_dir)
  windows = validation_windows(val, block_size, int(data.num_val_windows))
  # Fails here, with the sizes, rather than at the first batch.
  WindowSource(train, block_size, 1, 0)
  _log.info(
    '%s; %s tokenizer with %d ids; %d training and %d validation tokens, %d validation windows.',
    corpus.description,
    tokenizer.kind,
    tokenizer.vocab_size,
    len(train),
    len(val),
    len(windows),
  )
  feature = Feature(
    (block_size + 1,), 'int32', num_values=tokenizer.vocab_size, tokenizer=TOKENIZER_DIR
  )
  return Dataset(
    spec=DataSpec({'tokens': feature}, {TOKENIZER_DIR: tokenizer}),
    splits={'test': {'tokens': windows}},
    source=lambda batch_size, seed: WindowSource(train, block_size, batch_size, seed),
    extras={
      'tokenizer': tokenizer,
      'train_tokens': train,
      'val_tokens': val,
      'val_texts': corpus.val,
    },
  )


# The datasets registered as 'tinyshakespeare', 'python_stdlib' and 'text'
# (genjax.data.datasets).


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  config_lib.add_fields(
    c,
    {
      'data.path': '',  # a file, folder or glob of your own text; overrides data.name
      'data.tokenizer': 'char',  # 'char' | 'sentencepiece' (BPE, trained on the train split)
      'data.vocab_size': 4096,  # sentencepiece pieces; char: the corpus's characters
      'data.block_size': 256,  # tokens a window predicts (the model's context)
      'data.val_fraction': 0.1,  # last 10% of a single text; a 10% share of files otherwise
      'data.num_val_windows': 0,  # fixed validation windows (stride block_size); 0 = all
      'data.max_train_chars': 0,  # cap on the training text for quick tries; 0 = all
      'data.max_files': 0,  # multi-file corpora: a fixed sample of this many files; 0 = all
    },
  )


def dataset(data: ml_collections.ConfigDict, workdir: str | None = None) -> Dataset:
  return load_text(data, data.block_size, workdir)
