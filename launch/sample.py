r"""Draws pictures from a trained experiment into a PNG grid.

  python -m launch.sample --workdir=runs/fruits_vae                     # prior samples
  python -m launch.sample --workdir=runs/mnist_vae --mode=interpolate   # latent walks
  python -m launch.sample --workdir=runs/mnist_ae --mode=reconstruct    # inputs / outputs
  python -m launch.sample --workdir=runs/mnist_ae --mode=denoise        # noisy / denoised / clean

Modes a family does not have are refused with the list of those it has.
"""

import os

import jax
from absl import app, flags, logging

from genjax.data import datasets
from genjax.train import loop, restore
from genjax.writers import images as image_writer
from launch import common

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained experiment\'s workdir.')
_MODE = flags.DEFINE_string('mode', None, 'sample | reconstruct | interpolate | denoise; '
                            'default: the family\'s main view.')
_NUM = flags.DEFINE_integer('num', 64, 'How many pictures (pairs for interpolate: num // 10 rows).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed for latents and noise.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step; default the latest.')
_OUT = flags.DEFINE_string('out', None, 'PNG path; default WORKDIR/samples/MODE_stepN.png.')
_CLASS = flags.DEFINE_list('class', None, 'Class-conditional models: the class(es) to draw, '
                           'e.g. --class=7 or --class=3,5; default all classes in turn.')
flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  with common.user_errors_exit():
    config, task, state = restore.load_state(_WORKDIR.value, _STEP.value)
    mode = _MODE.value or task.default_view
    if mode not in task.views:
      raise common.ConfigError(
          f'--mode={mode!r}: the {task.name} family draws {sorted(task.views)}.')
    # Test images feed the modes that start from data; generation alone does not need them.
    test = datasets.load(config.data).test if mode != 'sample' else {}
    extra = {'classes': [int(c) for c in _CLASS.value]} if _CLASS.value else {}
    if extra and task.name != 'gan':
      raise common.ConfigError(f'--class: the {task.name} family is not class-conditional.')
    grid = loop.view_grid(task, mode, task.inference_variables(state), test,
                          jax.random.PRNGKey(_SEED.value), _NUM.value, **extra)
    step = int(state.step)
    out = _OUT.value or os.path.join(_WORKDIR.value, 'samples', f'{mode}_step{step}.png')
    image_writer.save_png(out, grid)
    logging.info('Wrote %s', out)
    print(out)


if __name__ == '__main__':
  app.run(main, flags_parser=common.parse_flags)
