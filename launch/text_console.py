"""launch.sample for views that stream text: one streamed sample, and a prompt loop.

The text appears token by token as the compiled generation loop produces it (a host
callback inside the loop), not after the whole sample is done. The prompt is printed
with the first piece of text, so a prompt the model cannot take prints nothing.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterable, TextIO

import jax

from genjax.config import ConfigError
from genjax.data.tokenizers import TokenizerError
from genjax.writers import outputs


def _writer(out: TextIO) -> Callable[[str], None]:
  def emit(text: str) -> None:
    out.write(text)
    out.flush()

  return emit


def stream(view, variables, rng, options: dict, out: TextIO = sys.stdout) -> outputs.Text:
  """The prompt and one continuation written to `out` as it grows, then a new line."""
  emit, started = _writer(out), []
  prompt = options['prompt']

  def on_text(piece: str) -> None:
    if not started:
      started.append(True)
      emit(prompt)
    emit(piece)

  drawn = view(variables, {}, rng, 1, on_text=on_text, **options)
  if not started:  # the sample ended at once
    emit(prompt)
  emit('\n')
  return drawn


def interactive(
  view, variables, rng, options: dict, read: Callable[[str], str] = input, out: TextIO = sys.stdout
) -> int:
  """Prompt, continue, repeat, until end of input or `/quit`; returns prompts answered.

  The model stays compiled between prompts (prompts are padded to a few lengths). A
  prompt the model cannot take is reported and the loop goes on.
  """
  emit = _writer(out)
  emit('Type a prompt and press Enter (\\n in the text is a new line); /quit or Ctrl-D ends.\n')
  answered = 0
  while True:
    try:
      line = read('> ')
    except (EOFError, KeyboardInterrupt):
      emit('\n')
      return answered
    if line.strip() == '/quit':
      return answered
    try:
      stream(
        view,
        variables,
        jax.random.fold_in(rng, answered),
        dict(options, prompt=line.replace('\\n', '\n')),
        out,
      )
      answered += 1
    except (TokenizerError, ConfigError) as e:
      emit(f'\nerror: {e}\n')


def each_line(
  view, variables, rng, options: dict, lines: Iterable[str] | None = None, out: TextIO = sys.stdout
) -> int:
  """An inputs view (translate, summarize) on each line read, one output line each, until
  end of input or `/quit`; returns the lines answered. Read from stdin by default: a
  terminal gets a prompt; a pipe (`... < sentences.txt`) is answered line for line."""
  emit = _writer(out)
  interactive_terminal = lines is None and sys.stdin.isatty()
  if interactive_terminal:
    emit('Type a sentence and press Enter; /quit or Ctrl-D ends.\n')
  source = lines if lines is not None else sys.stdin
  answered = 0
  for line in source:
    line = line.rstrip('\n')
    if line.strip() == '/quit':
      break
    try:
      drawn = view(variables, {}, jax.random.fold_in(rng, answered), 1, **dict(options, input=line))
      emit(drawn.show())
      answered += 1
    except (TokenizerError, ConfigError) as e:
      emit(f'error: {e}\n')
  return answered
