"""Tokenizers for the language model: characters, or byte-fallback BPE (sentencepiece).

Both kinds answer the same way: `kind`, `vocab_size`, `eos_id` (None when there is no
end-of-document token), `encode(text) -> int32 ids`, `decode(ids) -> text` and
`save(directory)`; `load_tokenizer(directory)` reads back what `save` wrote. Resume,
sampling and evaluation load the tokenizer saved with a run, so that ids always mean
what they meant in training.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pathlib
import re
import tempfile
from collections.abc import Iterable, Sequence

import numpy as np

CHAR_VOCAB_FILE = 'vocab.json'
SPM_MODEL_FILE = 'spm.model'
SPM_SETTINGS_FILE = 'spm.json'
_MAX_SHOWN = 10  # unknown characters named in an error message
# A literal U+2581 in text would decode as a space (sentencepiece's own space marker), so
# encode spells it as its three UTF-8 byte tokens, which decode back to the character.
_SPACE_MARK = '\u2581'

_log = logging.getLogger(__name__)


class TokenizerError(ValueError):
  """Text a tokenizer cannot encode, ids it cannot decode, or settings it cannot train.

  The message says what and how to fix it.
  """


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
  # Temp file in the same directory, then rename: a reader never sees half a file.
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.part', dir=path.parent)
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(data)
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(tmp)
    raise


def _json_bytes(obj) -> bytes:
  return (json.dumps(obj, indent=1, ensure_ascii=True) + '\n').encode('ascii')


def _as_id_array(ids, vocab_size: int) -> np.ndarray:
  ids = np.asarray(ids)
  if ids.ndim != 1:
    raise TokenizerError(f'decode takes a 1-D sequence of ids, got shape {ids.shape}.')
  if ids.size and not np.issubdtype(ids.dtype, np.integer):
    raise TokenizerError(f'decode takes integer ids, got dtype {ids.dtype}.')
  bad = ids[(ids < 0) | (ids >= vocab_size)] if ids.size else ids
  if bad.size:
    raise TokenizerError(
      f'Ids {sorted(set(bad.tolist()))[:_MAX_SHOWN]} are outside the vocabulary '
      f'(0..{vocab_size - 1}): they come from a model with a different vocabulary; '
      'decode with the tokenizer saved with that model.'
    )
  return ids.astype(np.int64, copy=False)


class CharTokenizer:
  """One id per character: the sorted characters of the text it was built from.

  As in nanoGPT, the vocabulary is the text's distinct characters in code-point order,
  so tinyshakespeare gives 65 ids. Text with a character outside the vocabulary cannot
  be encoded (there is no unknown id): `encode` raises TokenizerError naming them.
  """

  kind = 'char'
  eos_id = None

  def __init__(self, chars: Sequence[str]):
    chars = list(chars)
    if not chars:
      raise TokenizerError(
        'A character vocabulary needs at least one character; the text it was built from is empty.'
      )
    if any(len(c) != 1 for c in chars) or len(set(chars)) != len(chars):
      raise TokenizerError('A character vocabulary must be distinct single characters.')
    self.chars = sorted(chars)
    self.vocab_size = len(self.chars)
    # Code points, sorted: encode is a vectorized binary search, fast on 30 MB of text.
    self._codes = np.array([ord(c) for c in self.chars], dtype=np.uint32)

  @classmethod
  def from_text(cls, text: str | Iterable[str]) -> CharTokenizer:
    """The vocabulary of `text` (a string, or several whose characters are pooled)."""
    texts = [text] if isinstance(text, str) else text
    chars = set()
    for t in texts:
      chars.update(t)
    return cls(sorted(chars))

  def encode(self, text: str) -> np.ndarray:
    codes = np.frombuffer(text.encode('utf-32-le'), dtype=np.uint32)
    ids = np.searchsorted(self._codes, codes)
    clipped = np.minimum(ids, self.vocab_size - 1)
    known = self._codes[clipped] == codes
    if not known.all():
      unknown = sorted(set(text[i] for i in np.flatnonzero(~known)[:100_000]))
      shown = ', '.join(repr(c) for c in unknown[:_MAX_SHOWN])
      more = f' and {len(unknown) - _MAX_SHOWN} more' if len(unknown) > _MAX_SHOWN else ''
      raise TokenizerError(
        f'The text has characters the character vocabulary does not hold: {shown}{more}. '
        f'The vocabulary ({self.vocab_size} characters) comes from the training text (the '
        'corpus it was built from); remove or replace these characters, or build the '
        'tokenizer from a corpus that contains them.'
      )
    return clipped.astype(np.int32)

  def decode(self, ids) -> str:
    ids = _as_id_array(ids, self.vocab_size)
    return self._codes[ids].astype('<u4').tobytes().decode('utf-32-le')

  def save(self, directory: str | os.PathLike) -> None:
    """Writes `directory/vocab.json` (atomically)."""
    directory = pathlib.Path(directory)
    _atomic_write(
      directory / CHAR_VOCAB_FILE, _json_bytes({'kind': self.kind, 'chars': self.chars})
    )
    with contextlib.suppress(FileNotFoundError):  # a stale model of the other kind
      (directory / SPM_MODEL_FILE).unlink()

  @classmethod
  def load(cls, directory: str | os.PathLike) -> CharTokenizer:
    path = pathlib.Path(directory) / CHAR_VOCAB_FILE
    meta = json.loads(path.read_text(encoding='ascii'))
    if meta.get('kind') != cls.kind or not isinstance(meta.get('chars'), list):
      raise TokenizerError(
        f'{path} is not a character vocabulary (kind '
        f'{meta.get("kind")!r}); delete it so that it is built again.'
      )
    return cls(meta['chars'])


class SentencePieceTokenizer:
  """Byte-pair encoding (sentencepiece, 'bpe') that encodes any text exactly.

  Byte fallback: a character outside the vocabulary becomes its UTF-8 byte tokens
  (`<0xNN>`), never an unknown id and never an error, so any text encodes and
  `decode(encode(text)) == text` exactly. Normalization is off ('identity', no dummy
  prefix, extra whitespace kept), so code keeps its indentation, tabs and trailing
  spaces.

  Newlines: sentencepiece reads its training input as one sentence per line, so the
  model is trained on the lines of the documents and never sees '\\n'. A newline is
  therefore outside the vocabulary and encodes as the single byte token `<0x0A>` (one
  token per newline, which decodes back to '\\n'); no piece ever spans a line break.
  `\\t`, `\\r` and other characters missing from the vocabulary work the same way. A
  literal U+2581 ('\u2581', sentencepiece's space marker) is encoded as its byte tokens so
  that it does not come back as a space.

  Training is deterministic: no sampling of the input (all lines, in order, unless more
  than `max_sentences`; then an evenly spaced, fixed subset) and a fixed vocabulary
  order, so the same input gives the same model byte for byte.
  """

  kind = 'sentencepiece'

  def __init__(self, model_proto: bytes, settings: dict | None = None):
    import sentencepiece  # pylint: disable=import-outside-toplevel

    self.model_proto = bytes(model_proto)
    self.settings = dict(settings or {})
    self._sp = sentencepiece.SentencePieceProcessor(model_proto=self.model_proto)
    self.vocab_size = int(self._sp.get_piece_size())
    self.eos_id = int(self._sp.eos_id()) if self._sp.eos_id() >= 0 else None
    self.bos_id = int(self._sp.bos_id()) if self._sp.bos_id() >= 0 else None
    self._mark_bytes = [self._sp.piece_to_id(f'<0x{b:02X}>') for b in _SPACE_MARK.encode()]
    self._newline_id = self._sp.piece_to_id('<0x0A>')

  @classmethod
  def train(
    cls,
    texts: Iterable[str | os.PathLike],
    directory: str | os.PathLike | None,
    vocab_size: int,
    *,
    character_coverage: float = 0.9995,
    max_sentences: int = 5_000_000,
    num_threads: int = 2,
    add_dummy_prefix: bool = False,
    control_symbols: Sequence[str] = (),
  ) -> SentencePieceTokenizer:
    """Trains a BPE model on `texts` and saves it to `directory` (unless None).

    Args:
      texts: documents; a `str` is the text itself, an `os.PathLike` (e.g. a
        pathlib.Path) a UTF-8 file to read.
      directory: where to save (`spm.model` and `spm.json`); None keeps it in memory.
      vocab_size: pieces in all, including the 256 byte tokens and <unk>, <s>, </s>.
      character_coverage: share of the training characters that get their own piece;
        the rarest rest are spelled in bytes (so rare symbols do not eat the vocabulary).
      max_sentences: lines used at most (an evenly spaced subset beyond that), to bound
        memory and time on large corpora.
      num_threads: trainer threads.
      add_dummy_prefix: pieces start words ('▁word' at the start of a text as in its
        middle), for natural-language sentences; decoding drops the leading space again.
        Off for code, whose first characters matter exactly.
      control_symbols: pieces such as '<eot>' that get ids after </s> but never come
        out of `encode` (a text holding '<eot>' spells its characters): the caller puts
        their ids (`piece_id`) where they belong, and `decode` drops them.

    Raises:
      TokenizerError: no training text, or a vocab_size that cannot work (the message
        says the size needed).
    """
    import sentencepiece  # pylint: disable=import-outside-toplevel

    lines = []
    for item in texts:
      text = (
        pathlib.Path(item).read_text(encoding='utf-8') if isinstance(item, os.PathLike) else item
      )
      # Lines are the trainer's sentences; blank ones carry nothing to learn.
      lines.extend(line for line in text.split('\n') if line)
    if not lines:
      raise TokenizerError(
        'No training text for the sentencepiece tokenizer: the training documents are empty.'
      )
    if len(lines) > max_sentences:
      keep = np.linspace(0, len(lines) - 1, max_sentences).astype(np.int64)
      lines = [lines[i] for i in keep]
    settings = {
      'model_type': 'bpe',
      'vocab_size': int(vocab_size),
      'character_coverage': float(character_coverage),
      'byte_fallback': True,
      'split_digits': True,
      'normalization_rule_name': 'identity',
      'remove_extra_whitespaces': False,
      'add_dummy_prefix': bool(add_dummy_prefix),
      'allow_whitespace_only_pieces': True,
      'unk_id': 0,
      'bos_id': 1,
      'eos_id': 2,
      'pad_id': -1,
    }
    if control_symbols:  # only when asked: the settings (and models) of others stay as they were
      settings['control_symbols'] = list(control_symbols)
    model = io.BytesIO()
    try:
      sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        num_threads=num_threads,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        minloglevel=2,
        **settings,
      )
    except RuntimeError as e:
      raise TokenizerError(_training_failure(str(e), vocab_size)) from e
    _log.info(
      'Trained a sentencepiece BPE tokenizer: %d pieces from %d lines.', vocab_size, len(lines)
    )
    tokenizer = cls(model.getvalue(), settings)
    if directory is not None:
      tokenizer.save(directory)
    return tokenizer

  def _encode_line_batch(self, lines: list[str]) -> list[list[int]]:
    out = self._sp.encode(lines)
    for i, line in enumerate(lines):
      if _SPACE_MARK in line:  # rare: spelled in bytes, see the class doc
        parts = self._sp.encode(line.split(_SPACE_MARK))
        ids = list(parts[0])
        for part in parts[1:]:
          ids += self._mark_bytes + part
        out[i] = ids
    return out

  def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
    """`encode` of each text; one sentencepiece call for all of them (much faster).

    Lines are encoded separately and joined with the newline byte token: no piece spans
    a newline, so this is exactly the encoding of the whole text, and short inputs make
    sentencepiece's BPE about twice as fast as whole documents.
    """
    line_lists = [text.split('\n') for text in texts]
    encoded = self._encode_line_batch([line for lines in line_lists for line in lines])
    result, k = [], 0
    for lines in line_lists:
      ids: list[int] = []
      for j in range(len(lines)):
        if j:
          ids.append(self._newline_id)
        ids.extend(encoded[k])
        k += 1
      result.append(np.asarray(ids, dtype=np.int32))
    return result

  def encode(self, text: str) -> np.ndarray:
    return self.encode_batch([text])[0]

  def decode(self, ids) -> str:
    # Control ids (<s>, </s>) decode to nothing.
    return self._sp.decode(_as_id_array(ids, self.vocab_size).tolist())

  def id_to_piece(self, i: int) -> str:
    return self._sp.id_to_piece(int(i))

  def piece_id(self, piece: str) -> int | None:
    """The id of `piece` (e.g. a control symbol), or None when the vocabulary lacks it."""
    i = int(self._sp.piece_to_id(piece))
    return None if i == self._sp.unk_id() and piece != self._sp.id_to_piece(i) else i

  def save(self, directory: str | os.PathLike) -> None:
    """Writes `directory/spm.model` and `directory/spm.json` (kind, settings), atomically."""
    directory = pathlib.Path(directory)
    _atomic_write(directory / SPM_MODEL_FILE, self.model_proto)
    _atomic_write(
      directory / SPM_SETTINGS_FILE,
      _json_bytes({'kind': self.kind, 'vocab_size': self.vocab_size, 'settings': self.settings}),
    )
    with contextlib.suppress(FileNotFoundError):  # a stale vocabulary of the other kind
      (directory / CHAR_VOCAB_FILE).unlink()

  @classmethod
  def load(cls, directory: str | os.PathLike) -> SentencePieceTokenizer:
    directory = pathlib.Path(directory)
    settings_path = directory / SPM_SETTINGS_FILE
    settings = {}
    if settings_path.exists():
      settings = json.loads(settings_path.read_text(encoding='ascii')).get('settings', {})
    return cls((directory / SPM_MODEL_FILE).read_bytes(), settings)


def _training_failure(message: str, vocab_size: int) -> str:
  needed = re.search(r'smaller than required_chars\. \d+ vs (\d+)', message)
  if needed:
    return (
      f'vocab_size={vocab_size} is too small for this corpus: byte fallback and the '
      f'special pieces plus the characters to cover need {needed.group(1)}. Use '
      f'config.data.vocab_size >= {needed.group(1)} (e.g. 512 or more), or lower the '
      'character coverage.'
    )
  too_high = re.search(r'Vocabulary size too high.*?<= (\d+)', message)
  if too_high:
    return (
      f'vocab_size={vocab_size} is too large for this small corpus; use '
      f'config.data.vocab_size <= {too_high.group(1)} or a larger corpus.'
    )
  return f'Training the sentencepiece tokenizer failed: {message}'


def load_tokenizer(directory: str | os.PathLike) -> CharTokenizer | SentencePieceTokenizer:
  """The tokenizer `save` wrote to `directory`.

  Raises:
    FileNotFoundError: `directory` holds neither vocab.json nor spm.model.
  """
  directory = pathlib.Path(directory)
  if (directory / CHAR_VOCAB_FILE).exists():
    return CharTokenizer.load(directory)
  if (directory / SPM_MODEL_FILE).exists():
    return SentencePieceTokenizer.load(directory)
  raise FileNotFoundError(
    f'No saved tokenizer in {directory}: expected {CHAR_VOCAB_FILE} (character '
    f'vocabulary) or {SPM_MODEL_FILE} (sentencepiece model). Point at the tokenizer/ '
    'directory of a training run.'
  )
