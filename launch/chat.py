r"""A multi-turn chat with a trained chat model (experiments/chitchat.py), in the terminal.

  python -m launch.chat --workdir=runs/chat
  python -m launch.chat --workdir=runs/chat --temperature=0.7 --top_p=0.9 --max_new_tokens=80
  printf 'hi there\nhow are you?\n/quit\n' | python -m launch.chat --workdir=runs/chat

Each reply streams as it is generated and ends at the model's end-of-turn token. The
conversation stays in the context; when it no longer fits, the oldest turns are dropped,
and a message longer than the context keeps its most recent part (with a warning).
Empty lines are ignored; `/reset` starts a new conversation and `/quit` (or Ctrl-D) ends.
"""

import jax
from absl import app, flags

from genjax import api
from genjax.config import ConfigError
from launch import chat_console, common

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained chat experiment\'s workdir.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step; default the latest.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the token sampling.')
_MAX_NEW = flags.DEFINE_integer('max_new_tokens', 100, 'Tokens a reply may take at most.')
_TEMPERATURE = flags.DEFINE_float('temperature', 0.8, 'Softmax temperature; 0 is greedy.')
_TOP_K = flags.DEFINE_integer('top_k', 200, 'Sample among the k likeliest tokens; 0 = all.')
_TOP_P = flags.DEFINE_float('top_p', 1.0, 'Nucleus sampling mass; 1 = off.')
flags.mark_flags_as_required(['workdir'])


def _check_flags() -> None:
  if _MAX_NEW.value < 1:
    raise ConfigError(f'--max_new_tokens={_MAX_NEW.value}: give 1 or more.')
  if _TEMPERATURE.value < 0:
    raise ConfigError(f'--temperature={_TEMPERATURE.value}: give 0 (greedy) or more.')
  if _TOP_K.value < 0:
    raise ConfigError(f'--top_k={_TOP_K.value}: give 0 (all tokens) or more.')
  if not 0 < _TOP_P.value <= 1:
    raise ConfigError(f'--top_p={_TOP_P.value}: give a value in (0, 1] (1: off).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  with common.user_errors_exit():
    _check_flags()
    config, task, state = api.load_state(_WORKDIR.value, _STEP.value)
    if 'reply' not in task.views:  # what a family that chats declares
      raise ConfigError(
        f'{_WORKDIR.value} holds a {task.name!r} run, which does not chat: train a chat '
        'model (python -m launch.main --config=experiments/chitchat.py --workdir=DIR).'
      )
    session = chat_console.ChatSession(
      task.views['reply'],
      task.inference_variables(state),
      jax.random.PRNGKey(_SEED.value),
      max_turns=max(int(config.model.block_size) // 2, 2),
      max_new_tokens=_MAX_NEW.value,
      temperature=_TEMPERATURE.value,
      top_k=_TOP_K.value,
      top_p=_TOP_P.value,
    )
    chat_console.run(session)


if __name__ == '__main__':
  app.run(main, flags_parser=common.parse_flags)
