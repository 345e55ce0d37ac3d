"""The Chit-Chat Challenge conversations as turn-formatted token streams, for a chat LM.

The conversations (BYU PCC lab, MIT licence; 7,168 English chats) come from the
`chitchat-dataset` package of the package index, installed as genjax's `chat` extra
(`pip install -e '.[chat]'`; the `test` extra includes it). Its `dataset.json` is read
from the installed package and checked against its SHA-256; nothing is downloaded.

Each conversation is a list of messages, each a list of utterances by one sender. A
message becomes one turn (its utterances joined by spaces); the first sender is speaker 1
(`<speaker1>`). Conversations of one turn (3,151: nobody answered) are left out, and
4,017 remain.
Conversations go to training or validation by a stable hash of their ids
(`corpora.split_files`), so a conversation is never on both sides.

A sentencepiece BPE tokenizer with the chat symbols (`chat_format.CONTROL_SYMBOLS`) is
trained on the training turns and saved in `<workdir>/tokenizer/` (loaded from there on
resume, evaluation and chat). Both sides become one token stream each
(`ChatFormat.stream`); training reads random windows of it and evaluation fixed
windows, as for any text (`genjax.data.text`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import pathlib

import jax
import ml_collections
import numpy as np

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.data import corpora, files, text
from genjax.data.chat_format import CONTROL_SYMBOLS, ChatFormat, normalize
from genjax.data.spec import Dataset, DataSpec, Feature
from genjax.data.tokenizers import SentencePieceTokenizer, load_tokenizer

PACKAGE = 'chitchat_dataset'
DATA_FILE = 'dataset.json'
VERSION = '0.9.0'
SHA256 = 'd2a5d0bf6acf354fef51f3af39cbece2220d3b8f6086b658c3d335105798312a'
INSTALL = "pip install -e '.[chat]'"

_log = logging.getLogger(__name__)


def data_file() -> pathlib.Path:
  """The installed package's dataset.json, found without importing the package."""
  spec = importlib.util.find_spec(PACKAGE)
  locations = list(spec.submodule_search_locations or []) if spec is not None else []
  if not locations:
    raise files.DataError(
      f'The chitchat conversations come from the chitchat-dataset package, which is not '
      f'installed: run {INSTALL} in the genjax folder (or pip install '
      f'chitchat-dataset=={VERSION}).'
    )
  path = pathlib.Path(locations[0]) / DATA_FILE
  if not path.is_file():
    raise files.DataError(
      f'{path} is missing from the installed chitchat-dataset package: reinstall it '
      f'(pip install --force-reinstall chitchat-dataset=={VERSION}).'
    )
  return path


def turns_of(conversation: dict) -> list[str]:
  """A conversation's turns: one per message (its utterances joined), empty ones dropped;
  messages of the same sender in a row are one turn."""
  turns, senders = [], []
  for message in conversation.get('messages', []):
    said = normalize(' '.join(u.get('text', '') for u in message))
    if not said:
      continue
    sender = message[0].get('sender')
    if senders and senders[-1] == sender:
      turns[-1] = f'{turns[-1]} {said}'
    else:
      turns.append(said)
      senders.append(sender)
  return turns


@functools.lru_cache(maxsize=1)  # 40 MB of JSON: read once per process
def load_conversations(path: str | None = None) -> dict[str, list[str]]:
  """{conversation id: turns} of every conversation with at least two turns, checked
  against the published file's SHA-256. Cached: callers must not change it."""
  path = pathlib.Path(path) if path else data_file()
  raw = path.read_bytes()
  digest = hashlib.sha256(raw).hexdigest()
  if digest != SHA256:
    raise files.DataError(
      f'{path} has SHA-256 {digest}, not the {SHA256} of chitchat-dataset {VERSION}: the '
      f'package is another version or damaged. Run pip install --force-reinstall '
      f'chitchat-dataset=={VERSION} (or {INSTALL}).'
    )
  conversations = {}
  for cid, conversation in json.loads(raw).items():
    turns = turns_of(conversation)
    if len(turns) >= 2:
      conversations[cid] = turns
  return conversations


def split(
  conversations: dict[str, list[str]], val_fraction: float, max_conversations: int = 0
) -> tuple[list[list[str]], list[list[str]]]:
  """(training, validation) conversations, by a stable hash of their ids, in id order;
  `max_conversations` > 0 keeps a fixed sample of that many."""
  if not 0 < val_fraction < 1:
    raise ConfigError(
      f'config.data.val_fraction={val_fraction} must be in (0, 1): both sides need conversations.'
    )
  train, val = corpora.split_files(sorted(conversations), val_fraction, max_conversations)
  return [conversations[c] for c in sorted(train)], [conversations[c] for c in sorted(val)]


def _tokenizer(data, train: list[list[str]], workdir: str | None) -> SentencePieceTokenizer:
  directory = pathlib.Path(workdir) / text.TOKENIZER_DIR if workdir else None
  if directory is not None:
    with contextlib.suppress(FileNotFoundError):
      tokenizer = load_tokenizer(directory)
      if tokenizer.kind != 'sentencepiece' or tokenizer.vocab_size != data.vocab_size:
        raise ConfigError(
          f'{directory} holds a {tokenizer.kind} tokenizer of {tokenizer.vocab_size} ids, the '
          f'config asks for sentencepiece with data.vocab_size={data.vocab_size}: keep the '
          'size of the run, or train in a new workdir.'
        )
      ChatFormat(tokenizer)  # it holds the chat symbols, or says what to do
      return tokenizer
  tokenizer = SentencePieceTokenizer.train(
    [t for conv in train for t in conv],
    None,
    int(data.vocab_size),
    add_dummy_prefix=True,  # words start with '▁' at a turn's start as in its middle
    control_symbols=CONTROL_SYMBOLS,
  )
  if directory is not None and jax.process_index() == 0:
    tokenizer.save(directory)
  return tokenizer


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  config_lib.add_fields(
    c,
    {
      'data.vocab_size': 4096,  # sentencepiece pieces, the chat symbols included
      'data.block_size': 256,  # tokens a window predicts (the model's context)
      'data.val_fraction': 0.05,  # share of conversations held out (stable hash of their id)
      'data.num_val_windows': 0,  # fixed validation windows (stride block_size); 0 = all
      'data.max_conversations': 0,  # a fixed sample of this many conversations; 0 = all
    },
  )


def dataset(data: ml_collections.ConfigDict, workdir: str | None = None) -> Dataset:
  block_size = int(data.block_size)
  if block_size < 8:
    raise ConfigError(f'config.data.block_size={block_size}: a chat context needs >= 8 tokens.')
  train, val = split(load_conversations(), float(data.val_fraction), int(data.max_conversations))
  tokenizer = _tokenizer(data, train, workdir)
  chat = ChatFormat(tokenizer)
  dtype = np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.int32
  train_tokens, val_tokens = chat.stream(train, dtype), chat.stream(val, dtype)
  windows = text.validation_windows(val_tokens, block_size, int(data.num_val_windows))
  text.WindowSource(train_tokens, block_size, 1, 0)  # too short fails here, with the sizes
  _log.info(
    'chitchat: %d training and %d validation conversations; %d and %d tokens (%d ids); '
    '%d validation windows.',
    len(train),
    len(val),
    len(train_tokens),
    len(val_tokens),
    tokenizer.vocab_size,
    len(windows),
  )
  feature = Feature(
    (block_size + 1,), 'int32', num_values=tokenizer.vocab_size, tokenizer=text.TOKENIZER_DIR
  )
  return Dataset(
    spec=DataSpec({'tokens': feature}, {text.TOKENIZER_DIR: tokenizer}),
    splits={'test': {'tokens': windows}},
    source=lambda batch_size, seed: text.WindowSource(train_tokens, block_size, batch_size, seed),
    extras={'tokenizer': tokenizer, 'train_tokens': train_tokens, 'val_tokens': val_tokens},
  )
