"""Tests for genjax.data.{tokenizers,corpora,text}: tokenizers, corpora, windows."""

import jax
import ml_collections
import numpy as np
import pytest

from genjax.config import ConfigError
from genjax.data import corpora, text
from genjax.data.files import DataError
from genjax.data.tokenizers import (
  CharTokenizer,
  SentencePieceTokenizer,
  TokenizerError,
  load_tokenizer,
)
from tests.conftest import batches_of_two_processes

SHAKESPEARE_CHARS = 1115394
# Python source with what a code tokenizer must keep: indentation, tabs, blank lines,
# trailing spaces, CR, non-ASCII (also outside the vocabulary), sentencepiece's own
# space marker, and leading/trailing newlines.
TRICKY_SOURCE = (
  '\n#!/usr/bin/env python3\n'
  '"""Docstring with unicode: café, naïve, 日本語, emoji \U0001f40d, \u2581 marker."""\n\n\n'
  'class Foo:\n'
  '    def bar(self, x):  \n'
  '\tif x:\t# tab-indented\n'
  '\t\treturn x * 2\r\n'
  '        \n'
  '        return  None   \n'
  '    s = "  spaces   inside  "\n'
  '\x0c\n'
  '  \u00a0\u3000 nbsp and ideographic space\n\n'
)


def data_config(**overrides) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict(
    {
      'name': 'tinyshakespeare',
      'dir': '',
      'path': '',
      'tokenizer': 'char',
      'vocab_size': 512,
      'val_fraction': 0.1,
      'num_val_windows': 200,
      'max_train_chars': 0,
      'max_files': 0,
      'block_size': 64,
    }
  )
  c.update(overrides)
  return c


@pytest.fixture(scope='module')
def shakespeare() -> str:
  path = text.files.fetch_verified(  # downloaded when online and missing
    text.files.resolve_data_dir(''),
    corpora._SHAKESPEARE_RELPATH,  # pylint: disable=protected-access
    corpora._SHAKESPEARE_SHA256,
    corpora._SHAKESPEARE_URLS,
  )  # pylint: disable=protected-access
  return path.read_text(encoding='utf-8')


@pytest.fixture(scope='module')
def stdlib_docs() -> list[str]:
  """A few real standard-library modules (fixed names: stable across runs)."""
  root, _ = corpora.stdlib_files()
  names = ('textwrap.py', 'shlex.py', 'fnmatch.py', 'glob.py', 'bisect.py', 'heapq.py')
  return [(root / n).read_text(encoding='utf-8') for n in names]


@pytest.fixture(scope='module')
def spm(stdlib_docs) -> SentencePieceTokenizer:
  return SentencePieceTokenizer.train(stdlib_docs[1:], None, 512)


# ---------------------------------------------------------------- tokenizers


def test_char_round_trip_and_vocab_of_tinyshakespeare(shakespeare):
  tok = CharTokenizer.from_text(shakespeare)
  assert tok.vocab_size == 65 and tok.kind == 'char' and tok.eos_id is None
  ids = tok.encode(shakespeare)
  assert ids.dtype == np.int32 and len(ids) == len(shakespeare)
  assert tok.decode(ids) == shakespeare
  assert tok.chars == sorted(set(shakespeare))  # nanoGPT's stoi order
  assert tok.encode('\n').tolist() == [0]


def test_char_unknown_character_is_named():
  tok = CharTokenizer.from_text('abc \n')
  with pytest.raises(TokenizerError, match=r"'Z'.*training text"):
    tok.encode('abc Z')
  with pytest.raises(TokenizerError, match='outside the vocabulary'):
    tok.decode([0, 99])


def test_sentencepiece_round_trips_python_source_exactly(spm, stdlib_docs):
  assert spm.kind == 'sentencepiece' and spm.vocab_size == 512 and spm.eos_id == 2
  for source in [TRICKY_SOURCE, stdlib_docs[0], stdlib_docs[1], '', '\n', ' ', '\u2581']:
    ids = spm.encode(source)
    assert ids.dtype == np.int32
    assert spm.decode(ids) == source
  # A newline is one byte token: never merged into a piece, never dropped.
  newline = spm.encode('\n').tolist()
  assert len(newline) == 1 and spm.id_to_piece(newline[0]) == '<0x0A>'
  assert spm.encode('a\n\nb').tolist().count(newline[0]) == 2
  # Indentation is learned: eight spaces take fewer tokens than eight characters.
  assert len(spm.encode('        return')) < 8
  # The batch path is the same encoding.
  batch = spm.encode_batch([TRICKY_SOURCE, stdlib_docs[0]])
  assert batch[0].tolist() == spm.encode(TRICKY_SOURCE).tolist()
  assert batch[1].tolist() == spm.encode(stdlib_docs[0]).tolist()


def test_sentencepiece_training_is_deterministic(spm, stdlib_docs):
  again = SentencePieceTokenizer.train(stdlib_docs[1:], None, 512)
  assert again.model_proto == spm.model_proto


def test_sentencepiece_vocab_too_small_says_what_is_needed(stdlib_docs):
  with pytest.raises(TokenizerError, match='vocab_size >= '):
    SentencePieceTokenizer.train(stdlib_docs, None, 100)


def test_save_load_gives_identical_encodings(tmp_path, spm, shakespeare):
  char = CharTokenizer.from_text(shakespeare)
  for tok, sample in ((char, shakespeare[:5000]), (spm, TRICKY_SOURCE)):
    directory = tmp_path / tok.kind
    tok.save(directory)
    loaded = load_tokenizer(directory)
    assert type(loaded) is type(tok) and loaded.vocab_size == tok.vocab_size
    assert loaded.encode(sample).tolist() == tok.encode(sample).tolist()
    assert loaded.decode(tok.encode(sample)) == sample
  assert (tmp_path / 'char' / 'vocab.json').exists()
  assert (tmp_path / 'sentencepiece' / 'spm.model').exists()
  with pytest.raises(FileNotFoundError, match='No saved tokenizer'):
    load_tokenizer(tmp_path / 'nothing')


# ---------------------------------------------------------------- corpora and splits


def test_tinyshakespeare_split_and_validation_windows(shakespeare):
  data = text.load_text(data_config(), 64, None)
  n_train = int(0.9 * SHAKESPEARE_CHARS)
  assert len(data.extras['train_tokens']) == n_train
  assert len(data.extras['val_tokens']) == SHAKESPEARE_CHARS - n_train
  assert data.extras['train_tokens'].dtype == np.uint16
  assert data.spec.tokenizer('tokens') is data.extras['tokenizer']
  assert data.extras['tokenizer'].decode(data.extras['val_tokens']) == shakespeare[n_train:]
  assert data.extras['val_texts'] == [shakespeare[n_train:]]
  windows = data.test['tokens']
  assert windows.shape == (200, 65) and windows.dtype == np.int32
  # Fixed, from the start, inputs not overlapping: stride block_size.
  for i in (0, 1, 199):
    assert windows[i].tolist() == data.extras['val_tokens'][i * 64 : i * 64 + 65].tolist()
  np.testing.assert_array_equal(windows[:-1, -1], windows[1:, 0])
  assert len(text.load_text(data_config(num_val_windows=0), 64, None).test['tokens']) == (
    (SHAKESPEARE_CHARS - n_train - 1) // 64
  )


def test_python_stdlib_split_is_deterministic_and_disjoint_by_file():
  _, relpaths = corpora.stdlib_files()
  assert not any('site-packages' in r for r in relpaths)
  train, val = corpora.split_files(relpaths, 0.1)
  assert (train, val) == corpora.split_files(list(reversed(relpaths)), 0.1)
  assert not set(train) & set(val) and set(train) | set(val) == set(relpaths)
  assert 0.05 < len(val) / len(relpaths) < 0.15
  small_train, small_val = corpora.split_files(relpaths, 0.1, max_files=20)
  assert len(small_train) == 18 and len(small_val) == 2
  assert set(small_train) <= set(train) and set(small_val) <= set(val)


def test_python_stdlib_loads_with_documents_on_both_sides():
  config = data_config(name='python_stdlib', max_files=12, num_val_windows=4)
  data = text.load_text(config, 32, None)
  again = text.load_text(config, 32, None)
  np.testing.assert_array_equal(data.extras['train_tokens'], again.extras['train_tokens'])
  assert len(data.extras['val_texts']) >= 1 and all(data.extras['val_texts'])
  assert data.test['tokens'].shape == (4, 33)
  # Documents are joined by a blank line (characters have no end-of-document id).
  val_text = data.extras['tokenizer'].decode(data.extras['val_tokens'])
  assert val_text == '\n\n'.join(data.extras['val_texts'])


def test_max_train_chars_caps_training_only():
  data = text.load_text(data_config(max_train_chars=5000), 64, None)
  assert len(data.extras['train_tokens']) == 5000
  assert len(data.extras['val_tokens']) == SHAKESPEARE_CHARS - int(0.9 * SHAKESPEARE_CHARS)


def test_path_single_file_glob_folder_and_empty_glob(tmp_path, stdlib_docs):
  single = tmp_path / 'one.txt'
  single.write_text('hello world\n' * 50, encoding='utf-8')
  data = text.load_text(data_config(name='text', path=str(single)), 16, None)
  assert len(data.extras['train_tokens']) == 540
  assert data.extras['val_texts'] == [('hello world\n' * 50)[540:]]

  corpus = tmp_path / 'corpus' / 'sub'
  corpus.mkdir(parents=True)
  for i in range(30):
    (corpus / f'doc{i:02d}.txt').write_text(
      f'document {i}\n' + stdlib_docs[i % 6][:2000], encoding='utf-8'
    )
  (corpus / 'skip.bin').write_bytes(b'\xff\xfe\x00binary')
  by_glob = text.load_text(
    data_config(name='text', path=str(tmp_path / 'corpus/**/*.txt')), 16, None
  )
  assert len(by_glob.extras['val_texts']) >= 1 and all(by_glob.extras['val_texts'])
  names = {t.split('\n', 1)[0] for t in by_glob.extras['val_texts']}
  train_text = by_glob.extras['tokenizer'].decode(by_glob.extras['train_tokens'])
  assert not any(f'{n}\n' in train_text for n in names)  # split by file
  by_folder = text.load_text(data_config(name='text', path=str(tmp_path / 'corpus')), 16, None)
  # .bin skipped
  np.testing.assert_array_equal(by_folder.extras['train_tokens'], by_glob.extras['train_tokens'])

  with pytest.raises(DataError, match='nothing.*matches no files'):
    text.load_text(data_config(name='text', path=str(tmp_path / 'nothing/*.txt')), 16, None)


def test_config_and_size_errors(tmp_path):
  with pytest.raises(ConfigError, match='tinyshakespeare'):
    text.load_text(data_config(name='wikitext'), 16, None)
  with pytest.raises(ConfigError, match='sentencepiece'):
    text.load_text(data_config(tokenizer='bytes'), 16, None)
  with pytest.raises(ConfigError, match='needs config.data.path'):
    text.load_text(data_config(name='text'), 16, None)
  short = tmp_path / 'short.txt'
  short.write_text('x' * 100, encoding='utf-8')
  with pytest.raises(DataError, match='validation stream has 10 tokens'):
    text.load_text(data_config(path=str(short)), 16, None)
  with pytest.raises(DataError, match='training stream has 50 tokens'):
    text.load_text(data_config(path=str(short), val_fraction=0.5), 49, None)


# ---------------------------------------------------------------- windows


def test_window_source_is_deterministic_contiguous_and_shaped():
  tokens = np.arange(10_000, dtype=np.uint16)
  source = text.WindowSource(tokens, 32, batch_size=8, seed=3)
  b = source.batch(5)
  assert b['tokens'].shape == (8, 33) and b['tokens'].dtype == np.int32
  assert b['index'].tolist() == list(range(8)) and b['index'].dtype == np.int32
  np.testing.assert_array_equal(b['tokens'], source.batch(5)['tokens'])
  np.testing.assert_array_equal(b['tokens'], text.WindowSource(tokens, 32, 8, 3).batch(5)['tokens'])
  assert not np.array_equal(b['tokens'], source.batch(6)['tokens'])
  assert not np.array_equal(b['tokens'], text.WindowSource(tokens, 32, 8, 4).batch(5)['tokens'])
  # Each row is a contiguous slice (here tokens[i] == i), so targets = inputs shifted.
  np.testing.assert_array_equal(np.diff(b['tokens'], axis=1), 1)
  np.testing.assert_array_equal(b['tokens'][:, 1:], b['tokens'][:, :-1] + 1)
  assert source.steps_per_epoch == 10_000 // (8 * 32)
  example = source.example()
  assert example['tokens'].shape == (8, 33) and not example['tokens'].any()
  assert example['index'].tolist() == list(range(8))


def test_window_source_process_halves_make_the_global_batch(monkeypatch):
  tokens = np.random.default_rng(0).integers(0, 500, 5000).astype(np.uint16)
  source = text.WindowSource(tokens, 16, batch_size=8, seed=0)
  whole = source.batch(7)
  halves = batches_of_two_processes(source, 7, monkeypatch)
  np.testing.assert_array_equal(np.concatenate([h['tokens'] for h in halves]), whole['tokens'])
  assert halves[1]['index'].tolist() == [4, 5, 6, 7]


# ---------------------------------------------------------------- workdir tokenizer


def test_saved_tokenizer_and_token_cache_are_reused(tmp_path, monkeypatch):
  config = data_config(
    name='python_stdlib', tokenizer='sentencepiece', vocab_size=512, max_files=8, num_val_windows=2
  )
  first = text.load_text(config, 32, str(tmp_path))
  tok_dir = tmp_path / 'tokenizer'
  assert (tok_dir / 'spm.model').exists() and (tok_dir / 'train_tokens.npy').exists()
  assert first.extras['train_tokens'].dtype == np.uint16

  def must_not_run(*args, **kwargs):
    raise AssertionError('retrained or re-encoded although saved')

  with monkeypatch.context() as m:
    m.setattr(SentencePieceTokenizer, 'train', must_not_run)
    m.setattr(SentencePieceTokenizer, 'encode_batch', must_not_run)
    again = text.load_text(config, 32, str(tmp_path))
  np.testing.assert_array_equal(again.extras['train_tokens'], first.extras['train_tokens'])
  np.testing.assert_array_equal(again.test['tokens'], first.test['tokens'])
  assert again.extras['tokenizer'].model_proto == first.extras['tokenizer'].model_proto

  # A different corpus re-encodes with the saved tokenizer (still not retrained).
  with monkeypatch.context() as m:
    m.setattr(SentencePieceTokenizer, 'train', must_not_run)
    config.max_train_chars = 3000
    capped = text.load_text(config, 32, str(tmp_path))
  assert len(capped.extras['train_tokens']) < len(first.extras['train_tokens'])
  cached = np.load(tok_dir / 'train_tokens.npy')
  # The cache follows the corpus.
  np.testing.assert_array_equal(cached, capped.extras['train_tokens'])

  # Documents are separated by the end-of-document id, which decodes to nothing.
  eos = first.extras['tokenizer'].eos_id
  assert int(np.sum(first.extras['val_tokens'] == eos)) == len(first.extras['val_texts']) - 1
  val_text = first.extras['tokenizer'].decode(first.extras['val_tokens'])
  assert val_text == ''.join(first.extras['val_texts'])

  with pytest.raises(ConfigError, match='holds a .sentencepiece. tokenizer'):
    text.load_text(data_config(name='python_stdlib', max_files=8), 32, str(tmp_path))


def test_saved_char_vocabulary_is_reused_and_only_process_0_writes(tmp_path, monkeypatch):
  corpus = tmp_path / 'corpus.txt'
  corpus.write_text('abcdefgh \n' * 40, encoding='utf-8')
  config = data_config(name='text', path=str(corpus))
  with monkeypatch.context() as m:
    m.setattr(jax, 'process_index', lambda: 1)
    text.load_text(config, 16, str(tmp_path / 'other'))
  assert not (tmp_path / 'other').exists()
  first = text.load_text(config, 16, str(tmp_path / 'run'))
  assert load_tokenizer(tmp_path / 'run' / 'tokenizer').chars == first.extras['tokenizer'].chars
  # The corpus gained a character: the saved vocabulary is kept, and the error says why.
  corpus.write_text('abcdefgh \n' * 40 + 'Z', encoding='utf-8')
  with pytest.raises(DataError, match=r"tokenizer saved in.*'Z'"):
    text.load_text(config, 16, str(tmp_path / 'run'))
