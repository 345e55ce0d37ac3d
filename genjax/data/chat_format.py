"""Conversations as token ids: turns that open with a speaker token and end with `<eot>`.

A conversation is a list of turns (texts) by two speakers in turn, the first by speaker 1.
Turn i is `<speaker1>` (i even) or `<speaker2>` (i odd), the pieces of its text, then
`<eot>`. A stream of conversations puts the end-of-text id (`</s>`) before each one, so a
model learns how a conversation starts and, predicting `</s>` after an `<eot>`, where one
ends.

The three symbols are SentencePiece control symbols (`CONTROL_SYMBOLS`, given to
`SentencePieceTokenizer.train`): ids of their own that `encode` never produces (a text
that reads '<eot>' spells those five characters), so no text can forge a turn boundary;
`decode` drops them. Texts are one line each, whitespace collapsed (`normalize`): the
chitchat data joins a turn's messages with spaces, and a chat console reads one line.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from genjax.data.tokenizers import TokenizerError

SPEAKERS = ('<speaker1>', '<speaker2>')
END_OF_TURN = '<eot>'
CONTROL_SYMBOLS = (*SPEAKERS, END_OF_TURN)
NAMES = ('A', 'B')  # how `render` labels the two speakers


def normalize(text: str) -> str:
  """A turn's text as the model sees it: one line, single spaces, no space at either end."""
  return ' '.join(text.split())


class ChatFormat:
  """Turns <-> token ids for a tokenizer that holds `CONTROL_SYMBOLS`.

  Raises TokenizerError for a tokenizer without them (one not built for chat data).
  """

  def __init__(self, tokenizer):
    piece_id = getattr(tokenizer, 'piece_id', None)
    ids = [piece_id(s) for s in CONTROL_SYMBOLS] if piece_id else [None]
    if None in ids or tokenizer.eos_id is None:
      raise TokenizerError(
        f'The tokenizer has no chat symbols {CONTROL_SYMBOLS}: the chat family trains on '
        "conversations formatted as turns (config.data.name='chitchat'), whose "
        'sentencepiece tokenizer holds them. Train such a run in a new workdir.'
      )
    self.tokenizer = tokenizer
    self.speaker_ids = tuple(ids[:2])
    self.eot_id = ids[2]
    self.eos_id = tokenizer.eos_id
    self.control_ids = frozenset((*ids, self.eos_id))

  def turn(self, text: str, speaker: int) -> np.ndarray:
    """int32 `<speakerN>` + the text's pieces + `<eot>`; speaker 0 or 1."""
    return self.turns([text], speaker)[0]

  def turns(self, texts: Sequence[str], first_speaker: int = 0) -> list[np.ndarray]:
    """Each text as a turn, speakers alternating from `first_speaker` (one encode call)."""
    encoded = self.tokenizer.encode_batch([normalize(t) for t in texts])
    return [
      np.concatenate([[self.speaker_ids[(first_speaker + i) % 2]], ids, [self.eot_id]]).astype(
        np.int32
      )
      for i, ids in enumerate(encoded)
    ]

  def conversation(self, texts: Sequence[str]) -> np.ndarray:
    """`</s>` then the turns: how a conversation sits in a training stream."""
    return np.concatenate([[self.eos_id], *self.turns(texts)]).astype(np.int32)

  def stream(self, conversations: Sequence[Sequence[str]], dtype=np.int32) -> np.ndarray:
    """The conversations one after the other, each opened by `</s>`."""
    flat = [t for conv in conversations for t in conv]
    encoded = iter(self.tokenizer.encode_batch([normalize(t) for t in flat]))
    parts = []
    for conv in conversations:
      parts.append(np.array([self.eos_id]))
      for i in range(len(conv)):
        parts += [np.array([self.speaker_ids[i % 2]]), next(encoded), np.array([self.eot_id])]
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

  def parse(self, ids) -> list[list[tuple[int, str]]]:
    """The conversations in `ids`, each a list of (speaker, text) turns; the inverse of
    `stream` (a turn without its `<eot>` yet is kept as far as it goes)."""
    conversations: list[list[tuple[int, str]]] = [[]]
    speaker, pieces = None, []

    def close():
      if speaker is not None:
        conversations[-1].append((speaker, self.tokenizer.decode(np.asarray(pieces, np.int32))))

    for token in np.asarray(ids).tolist():
      if token == self.eos_id:
        close()
        speaker, pieces = None, []
        if conversations[-1]:
          conversations.append([])
      elif token in self.speaker_ids:
        close()
        speaker, pieces = self.speaker_ids.index(token), []
      elif token == self.eot_id:
        close()
        speaker, pieces = None, []
      elif speaker is not None:
        pieces.append(token)
    close()
    return [c for c in conversations if c]

  def render(self, ids) -> str:
    """Text a person reads: 'A: ...' and 'B: ...' lines, a blank line between
    conversations. Rendering more ids only appends (an open turn has no line end yet),
    which is what streaming needs."""
    out, pieces = [], []

    def flush():
      if pieces:
        out.append(self.tokenizer.decode(np.asarray(pieces, np.int32)))
        pieces.clear()

    for i, token in enumerate(np.asarray(ids).tolist()):
      if token in self.control_ids:
        flush()
        if token == self.eot_id:
          out.append('\n')
        elif token in self.speaker_ids:
          out.append(f'{NAMES[self.speaker_ids.index(token)]}: ')
        elif i:  # </s> after a conversation: a blank line; at the very start, nothing
          out.append('\n')
      else:
        pieces.append(token)
    flush()
    return ''.join(out)

  def turn_spans(self, ids) -> np.ndarray:
    """int [T, 2]: (position of the speaker token, position of its `<eot>`) of every
    complete turn of a stream."""
    ids = np.asarray(ids)
    starts = np.flatnonzero(np.isin(ids, self.speaker_ids))
    ends = np.flatnonzero(ids == self.eot_id)
    # Each start pairs with the first <eot> after it; a stream of whole turns has one each.
    following = np.searchsorted(ends, starts)
    whole = following < len(ends)
    spans = np.stack([starts[whole], ends[following[whole]]], axis=1)
    # A start whose <eot> comes after the next start (a cut turn) is not a whole turn.
    next_start = np.append(starts[1:], len(ids))[whole]
    return spans[spans[:, 1] < next_start]
