"""Pairs of texts (a sentence and its translation, a function and its summary) as tokens.

`pair_dataset(pairs, data, workdir)` turns the raw text of each split into the arrays an
encoder-decoder trains on:

1. Preparation (`Preparation`): optionally lowercased and Moses-tokenized
   (`sacremoses`, per language), the recipe whose BLEU the Multi30k literature reports.
2. One joint SentencePiece BPE (`data.vocab_size` pieces, byte fallback, so any text
   encodes) trained on both sides of the training split, saved in `<workdir>/tokenizer/`
   and loaded from there on resume, sampling and evaluation.
3. `source` = pieces + EOS; `target` = BOS + pieces + EOS. Training pairs with a side
   longer than `data.max_length` tokens are dropped (counted in the log), or their source
   truncated with `data.truncate_train_sources`; evaluation pairs are truncated (and
   counted), since every test sentence must be translated.

Training batches are cut under a token budget (`data.tokens_per_batch`,
`genjax.data.token_budget`); the other splits are fixed padded arrays. Id 0 is padding:
the tokenizer's <unk>, which byte fallback never emits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import pathlib
from typing import Sequence

import jax
import ml_collections
import numpy as np

from genjax import config as config_lib
from genjax.data import files
from genjax.data.sequences import padded_arrays
from genjax.data.spec import Dataset, DataSpec, Feature
from genjax.data.token_budget import TokenBudgetSource
from genjax.data.tokenizers import SentencePieceTokenizer, load_tokenizer

TOKENIZER_DIR = 'tokenizer'
PAD_ID = 0  # the tokenizer's <unk>: byte fallback never produces it

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Split:
  """One split's raw texts, line i of `sources` paired with line i of `targets`."""

  sources: Sequence[str]
  targets: Sequence[str]


@dataclasses.dataclass(frozen=True)
class Preparation:
  """How raw text becomes what the tokenizer sees, per side, and back."""

  source_lang: str = ''  # Moses's language code; '' = no Moses tokenization
  target_lang: str = ''
  lowercase: bool = False

  def _tokenize(self, text: str, lang: str) -> str:
    text = text.strip()
    if self.lowercase:
      text = text.lower()
    if not lang:
      return text
    # escape=False: keep '&' and quotes as they are, not as HTML entities.
    return _moses_tokenizer(lang).tokenize(text, escape=False, return_str=True)

  def source(self, text: str) -> str:
    return self._tokenize(text, self.source_lang)

  def target(self, text: str) -> str:
    return self._tokenize(text, self.target_lang)

  def detokenize_target(self, text: str) -> str:
    """Model output (Moses tokens when prepared so) back to running text."""
    if not self.target_lang:
      return text
    return _moses_detokenizer(self.target_lang).detokenize(text.split())


@functools.lru_cache(maxsize=None)
def _moses_tokenizer(lang: str):
  import sacremoses  # pylint: disable=import-outside-toplevel (text pairs only)

  return sacremoses.MosesTokenizer(lang)


@functools.lru_cache(maxsize=None)
def _moses_detokenizer(lang: str):
  import sacremoses  # pylint: disable=import-outside-toplevel

  return sacremoses.MosesDetokenizer(lang)


def preparation(data: ml_collections.ConfigDict) -> Preparation:
  moses = bool(data.moses)
  return Preparation(
    source_lang=data.source_lang if moses else '',
    target_lang=data.target_lang if moses else '',
    lowercase=bool(data.lowercase),
  )


def _tokenizer(data, texts: list[str], workdir: str | None) -> SentencePieceTokenizer:
  directory = pathlib.Path(workdir) / TOKENIZER_DIR if workdir else None
  if directory is not None:
    with contextlib.suppress(FileNotFoundError):
      tokenizer = load_tokenizer(directory)
      if tokenizer.vocab_size != data.vocab_size:
        raise config_lib.ConfigError(
          f'{directory} holds a tokenizer of {tokenizer.vocab_size} pieces, the config asks '
          f'for data.vocab_size={data.vocab_size}: keep the size of the run, or train in a '
          'new workdir.'
        )
      return tokenizer
  tokenizer = SentencePieceTokenizer.train(
    texts, None, data.vocab_size, add_dummy_prefix=True, character_coverage=1.0
  )
  if directory is not None and jax.process_index() == 0:
    tokenizer.save(directory)
  return tokenizer


def encode_sources(tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
  return [np.append(ids, tokenizer.eos_id) for ids in tokenizer.encode_batch(list(texts))]


def encode_targets(tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
  return [
    np.concatenate([[tokenizer.bos_id], ids, [tokenizer.eos_id]]).astype(np.int32)
    for ids in tokenizer.encode_batch(list(texts))
  ]


def _fit(sequences: list[np.ndarray], max_length: int, keep_last: int) -> tuple[list, int]:
  """Sequences cut to max_length, keeping their last `keep_last` tokens (EOS); the count cut."""
  cut = [
    s if len(s) <= max_length else np.append(s[: max_length - keep_last], s[-keep_last:])
    for s in sequences
  ]
  return cut, sum(len(s) > max_length for s in sequences)


def pair_dataset(
  splits: dict[str, Split],
  data: ml_collections.ConfigDict,
  workdir: str | None,
  description: str,
  prepare: Preparation | None = None,
) -> Dataset:
  """Tokens of every split; `splits['train']` trains, the others are fixed arrays."""
  prepare = preparation(data) if prepare is None else prepare
  first = lambda s, n: Split(s.sources[:n], s.targets[:n]) if n else s
  splits = {
    name: first(s, data.num_train if name == 'train' else data.num_test)
    for name, s in splits.items()
  }
  prepared = {
    name: Split([prepare.source(t) for t in s.sources], [prepare.target(t) for t in s.targets])
    for name, s in splits.items()
  }
  train = prepared['train']
  tokenizer = _tokenizer(data, [*train.sources, *train.targets], workdir)
  encoded = {
    name: {
      'source': encode_sources(tokenizer, s.sources),
      'target': encode_targets(tokenizer, s.targets),
    }
    for name, s in prepared.items()
  }
  limit = int(data.max_length)
  cut_train = 0
  if data.truncate_train_sources:
    encoded['train']['source'], cut_train = _fit(encoded['train']['source'], limit, 1)
  keep = [
    i
    for i, (s, t) in enumerate(zip(encoded['train']['source'], encoded['train']['target']))
    if len(s) <= limit and len(t) <= limit
  ]
  dropped = len(encoded['train']['source']) - len(keep)
  if not keep:
    raise files.DataError(
      f'{description}: no training pair fits data.max_length={limit} tokens; raise it.'
    )
  train_arrays = {k: [v[i] for i in keep] for k, v in encoded['train'].items()}
  held_out = {}
  for name, features in encoded.items():
    if name == 'train':
      continue
    source, cut_source = _fit(features['source'], limit, 1)
    target, cut_target = _fit(features['target'], limit, 1)
    if cut_source or cut_target:
      _log.warning(
        '%s: %d source and %d target texts of the %r split are longer than '
        'data.max_length=%d tokens and were truncated.',
        description,
        cut_source,
        cut_target,
        name,
        limit,
      )
    held_out[name] = padded_arrays({'source': source, 'target': target}, data.length_multiple)
  _log.info(
    '%s: %s; joint BPE of %d pieces; %d training pairs (%d longer than %d tokens dropped, '
    '%d sources truncated).',
    description,
    ', '.join(f'{name} {len(s.sources):,}' for name, s in splits.items()),
    tokenizer.vocab_size,
    len(keep),
    dropped,
    limit,
    cut_train,
  )
  feature = Feature((None,), 'int32', num_values=tokenizer.vocab_size, tokenizer=TOKENIZER_DIR)

  def source(batch_size: int, seed: int) -> TokenBudgetSource:
    del batch_size  # the token budget sets each batch's rows
    return TokenBudgetSource(
      train_arrays,
      data.tokens_per_batch,
      seed,
      count_feature='target',
      length_multiple=data.length_multiple,
      row_multiple=jax.device_count(),
      fixed_length_features=('target',) if data.pad_target_to_longest else (),
    )

  return Dataset(
    spec=DataSpec({'source': feature, 'target': feature}, {TOKENIZER_DIR: tokenizer}),
    splits=held_out,
    source=source,
    extras={
      'tokenizer': tokenizer,
      'prepare': prepare,
      'raw': splits,  # the texts as published: references for detokenized BLEU
      'prepared': prepared,  # as the tokenizer saw them: references for tokenized BLEU
    },
  )


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  """The `data.*` fields every text-pair dataset shares."""
  config_lib.add_fields(
    c,
    {
      'data.vocab_size': 8000,  # pieces of the joint source/target BPE
      'data.lowercase': True,  # lowercase both sides (the comparable Multi30k recipe)
      'data.moses': True,  # Moses-tokenize before BPE, detokenize after (sacremoses)
      'data.source_lang': 'de',  # language codes, for Moses
      'data.target_lang': 'en',
      'data.max_length': 128,  # tokens per side, EOS (and BOS) included
      'data.tokens_per_batch': 4096,  # rows x padded length of a training batch
      'data.length_multiple': 8,  # lengths rounded up to this: fewer shapes to compile
      # Pad every training batch's targets to the longest training target rather than to
      # the batch's length: for targets much shorter than their sources (summaries).
      'data.pad_target_to_longest': False,
      # A training source longer than data.max_length keeps its first tokens (and EOS), as
      # evaluation sources do, instead of its pair being dropped: for code, whose head (the
      # name, the arguments) says most of what its summary says.
      'data.truncate_train_sources': False,
      'data.num_train': 0,  # the first N training pairs only (quick runs, tests); 0 = all
      'data.num_test': 0,  # the first N pairs of each held-out split (quick runs); 0 = all
    },
  )
