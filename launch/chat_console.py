"""launch.chat's console without its flags: `ChatSession` keeps the conversation and asks
the family's 'reply' view for each turn; `run` reads lines and answers them. Neither needs
a terminal: tests drive them with lists of lines.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterable, Iterator, TextIO

import jax

from genjax.config import ConfigError
from genjax.data.tokenizers import TokenizerError

BANNER = 'Chat with the model: type a message and press Enter; /reset starts over, /quit ends.\n'


class ChatSession:
  """One conversation: the turns so far, the user's and the model's in turn.

  The whole history goes to the 'reply' view each time, which keeps the latest turns that
  fit the model's context; `max_turns` bounds what is kept here (a context of T tokens
  holds at most T // 2 turns, a turn being at least a speaker token and an end-of-turn).
  """

  def __init__(self, view, variables, rng, *, max_turns: int = 512, **options):
    self.view, self.variables, self.rng = view, variables, rng
    self.max_turns, self.options = max_turns, options
    self.history: list[str] = []
    self.replies = 0  # replies given, in all conversations: each draws with its own key

  def reply(self, line: str, on_text: Callable[[str], None] | None = None) -> str | None:
    """The model's reply to `line` (streamed to `on_text`); None for an empty line, which
    is ignored."""
    if not line.strip():
      return None
    drawn = self.view(
      self.variables,
      {},
      jax.random.fold_in(self.rng, self.replies),
      1,
      prompt=line,
      history=tuple(self.history),
      on_text=on_text,
      **self.options,
    )
    self.replies += 1
    self.history = [*self.history, line.strip(), drawn.text][-self.max_turns :]
    return drawn.text

  def reset(self) -> None:
    """Forgets the conversation: the next line starts a new one."""
    self.history = []


def _terminal_lines(read: Callable[[str], str]) -> Iterator[str]:
  while True:
    try:
      yield read('you> ')
    except (EOFError, KeyboardInterrupt):
      return


def run(
  session: ChatSession,
  lines: Iterable[str] | None = None,
  out: TextIO = sys.stdout,
  read: Callable[[str], str] = input,
) -> int:
  """Answers each line until `/quit` or the end of input; returns the replies given.

  `/reset` starts a new conversation; empty lines are ignored. From a terminal (stdin a
  tty and no `lines`) it prompts with `read`; otherwise each line is echoed after
  'you> ', so that the output reads as a transcript.
  """

  def emit(text: str) -> None:
    out.write(text)
    out.flush()

  terminal = lines is None and sys.stdin.isatty()
  if terminal:
    emit(BANNER)
  source = _terminal_lines(read) if terminal else (sys.stdin if lines is None else lines)
  answered = 0
  for raw in source:
    line = raw.rstrip('\n')
    command = line.strip()
    if command == '/quit':
      break
    if command == '/reset':
      session.reset()
      emit('(a new conversation)\n')
      continue
    if not command:
      continue
    if not terminal:
      emit(f'you> {line}\n')
    emit('bot> ')
    try:
      session.reply(line, on_text=emit)
      answered += 1
      emit('\n')
    except (TokenizerError, ConfigError) as e:
      emit(f'\nerror: {e}\n')
    except KeyboardInterrupt:  # Ctrl-C during a reply ends the chat, without a traceback
      emit('\n')
      break
  return answered
