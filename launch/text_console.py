"""launch.sample for language models: streamed samples, and an interactive prompt loop.

The text appears token by token as the compiled generation loop produces it (a host
callback inside the loop), not after the whole sample is done.
"""

from __future__ import annotations

import sys
from typing import Callable, TextIO

import jax

from genjax.data.tokenizers import TokenizerError
from genjax.tasks.lm_sampling import PromptError

SEPARATOR = '\n' + '-' * 40 + '\n'


def _writer(out: TextIO) -> Callable[[str], None]:
  def emit(text: str) -> None:
    out.write(text)
    out.flush()
  return emit


def print_samples(sampler, params, prompt: str, rng, options: dict, num_samples: int,
                  out: TextIO = sys.stdout) -> list[str]:
  """Writes the prompt and its continuations to `out`; one sample streams as it grows."""
  emit = _writer(out)
  sampler.encode_prompt(prompt)  # a bad prompt fails before anything is printed
  if num_samples == 1:
    emit(prompt)
    texts = sampler.sample(params, prompt, rng, on_text=emit, **options)
    emit('\n')
    return texts
  texts = sampler.sample(params, prompt, rng, num_samples=num_samples, **options)
  for text in texts:  # a batch of samples is generated at once, so none can stream alone
    emit(prompt + text + SEPARATOR)
  return texts


def interactive(sampler, params, rng, options: dict, read: Callable[[str], str] = input,
                out: TextIO = sys.stdout) -> int:
  """Prompt, continue, repeat, until end of input or `/quit`; returns prompts answered.

  The model stays compiled between prompts (prompts are padded to a few lengths). A
  prompt the tokenizer cannot encode is reported and the loop goes on.
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
    prompt = line.replace('\\n', '\n')
    try:
      sampler.encode_prompt(prompt)
      emit(prompt)
      sampler.sample(params, prompt, jax.random.fold_in(rng, answered), on_text=emit,
                     **options)
      emit('\n')
      answered += 1
    except (TokenizerError, PromptError) as e:
      emit(f'\nerror: {e}\n')
