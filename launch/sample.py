r"""Draws from a trained experiment: a PNG grid of images, or text to stdout.

  python -m launch.sample --workdir=runs/fruits_vae                     # prior samples
  python -m launch.sample --workdir=runs/mnist_vae --mode=interpolate   # latent walks
  python -m launch.sample --workdir=runs/mnist_ae --mode=reconstruct    # inputs / outputs
  python -m launch.sample --workdir=runs/mnist_ae --mode=denoise        # noisy / denoised / clean
  python -m launch.sample --workdir=runs/shakespeare_cpu --prompt="ROMEO:" --max_new_tokens=500 \
      --temperature=0.8 --top_k=200                                     # streams text
  python -m launch.sample --workdir=runs/shakespeare_cpu --interactive  # a prompt loop

Modes a family does not have are refused with the list of those it has.
"""

import os

import jax
from absl import app, flags, logging

from genjax.data import datasets
from genjax.train import loop, restore
from genjax.writers import images as image_writer
from launch import common, text_console

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained experiment\'s workdir.')
_MODE = flags.DEFINE_string('mode', None, 'sample | reconstruct | interpolate | denoise; '
                            'default: the family\'s main view.')
_NUM = flags.DEFINE_integer('num', 64, 'How many pictures (pairs for interpolate: num // 10 rows).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed for latents, noise and token sampling.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step; default the latest.')
_OUT = flags.DEFINE_string('out', None, 'Images: PNG path (default WORKDIR/samples/MODE_stepN.png). '
                           'Text: also write the samples to this file.')
_CLASS = flags.DEFINE_list('class', None, 'Class-conditional models: the class(es) to draw, '
                           'e.g. --class=7 or --class=3,5; default all classes in turn.')
# Language models.
_PROMPT = flags.DEFINE_string('prompt', '\n', 'Text: the start of the sample.')
_MAX_NEW = flags.DEFINE_integer('max_new_tokens', 500, 'Text: tokens to generate per sample.')
_TEMPERATURE = flags.DEFINE_float('temperature', 0.8, 'Text: softmax temperature; 0 is greedy.')
_TOP_K = flags.DEFINE_integer('top_k', 200, 'Text: sample among the k likeliest tokens; 0 = all.')
_TOP_P = flags.DEFINE_float('top_p', 1.0, 'Text: nucleus sampling mass; 1 = off.')
_NUM_SAMPLES = flags.DEFINE_integer('num_samples', 1, 'Text: samples generated in one batch.')
_INTERACTIVE = flags.DEFINE_bool('interactive', False, 'Text: a prompt loop that keeps the '
                                 'model compiled between prompts.')
flags.mark_flags_as_required(['workdir'])


def sample_text(task, params, rng) -> None:
  if _NUM_SAMPLES.value < 1 or _MAX_NEW.value < 1:
    raise common.ConfigError('--num_samples and --max_new_tokens must be >= 1.')
  options = {'max_new_tokens': _MAX_NEW.value, 'temperature': _TEMPERATURE.value,
             'top_k': _TOP_K.value, 'top_p': _TOP_P.value}
  if _INTERACTIVE.value:
    text_console.interactive(task.sampler, params, rng, options)
    return
  texts = text_console.print_samples(task.sampler, params, _PROMPT.value, rng, options,
                                     _NUM_SAMPLES.value)
  if _OUT.value:
    with open(_OUT.value, 'w', encoding='utf-8') as f:
      f.write(text_console.SEPARATOR.join(_PROMPT.value + t for t in texts))
    logging.info('Wrote %s', _OUT.value)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  with common.user_errors_exit():
    config, task, state = restore.load_state(_WORKDIR.value, _STEP.value)
    rng = jax.random.PRNGKey(_SEED.value)
    if task.sampler is not None:
      sample_text(task, task.inference_variables(state), rng)
      return
    mode = _MODE.value or task.default_view
    if mode not in task.views:
      raise common.ConfigError(
          f'--mode={mode!r}: the {task.name} family draws {sorted(task.views)}.')
    # Test images feed the modes that start from data; generation alone does not need them.
    test = datasets.load(config.data).test if mode != 'sample' else {}
    extra = {'classes': [int(c) for c in _CLASS.value]} if _CLASS.value else {}
    if extra and task.name != 'gan':
      raise common.ConfigError(f'--class: the {task.name} family is not class-conditional.')
    grid = loop.view_grid(task, mode, task.inference_variables(state), test, rng, _NUM.value,
                          **extra)
    step = int(state.step)
    out = _OUT.value or os.path.join(_WORKDIR.value, 'samples', f'{mode}_step{step}.png')
    image_writer.save_png(out, grid)
    logging.info('Wrote %s', out)
    print(out)


if __name__ == '__main__':
  app.run(main, flags_parser=common.parse_flags)
