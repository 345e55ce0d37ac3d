r"""GAN data augmentation on 1,000 labelled MNIST images: test accuracy with and without
samples of a trained class-conditional GAN.

  python -m launch.main --config=experiments/mnist_cdcgan.py --workdir=runs/mnist_cdcgan
  python -m bench.augmentation --workdir=runs/augment --generator_workdir=runs/mnist_cdcgan

Trains experiments/mnist_augment.py's two variants in WORKDIR/real and WORKDIR/gan
(resuming, or skipping, what is already trained), evaluates each on all 10,000 test
images, prints a markdown table and writes WORKDIR/results.json. --variants=real runs
the baseline alone (no GAN needed).
"""

from __future__ import annotations

import json
import os
import time

import jax
from absl import app, flags, logging

from experiments import mnist_augment
from genjax import api
from genjax.data import datasets
from genjax.run import loop, restore
from genjax.tasks import classifier
from launch import common

_WORKDIR = flags.DEFINE_string('workdir', None, 'Parent directory of the runs.')
_GENERATOR_WORKDIR = flags.DEFINE_string(
  'generator_workdir',
  mnist_augment.GENERATOR_WORKDIR,
  'A trained class-conditional GAN (experiments/mnist_cdcgan.py).',
)
_FRACTION = flags.DEFINE_float(
  'fraction', mnist_augment.FRACTION, "'gan' variant: share of each batch drawn from the GAN."
)
_STEPS = flags.DEFINE_integer('steps', 0, 'Training steps; 0 = the experiment\'s.')
_VARIANTS = flags.DEFINE_list('variants', list(mnist_augment.VARIANTS), 'Variants to run.')
flags.mark_flags_as_required(['workdir'])


def variant_config(variant: str):
  config = mnist_augment.get_config(variant)
  if variant == 'gan':
    config.augment.generator_workdir = _GENERATOR_WORKDIR.value
    config.augment.fraction = _FRACTION.value
  if _STEPS.value:
    config.train.steps = _STEPS.value
  return config


def _previous_results(path: str) -> dict:
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f).get('variants', {})


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  results_path = os.path.join(_WORKDIR.value, 'results.json')
  with common.user_errors_exit():
    for variant in _VARIANTS.value:
      if variant not in mnist_augment.VARIANTS:
        raise app.UsageError(f'--variants: {variant!r} is not one of {mnist_augment.VARIANTS}.')
    configs = {v: variant_config(v) for v in _VARIANTS.value}
    for config in configs.values():  # a missing or unsuitable GAN fails before any training
      classifier.make_synthesizer(config, (28, 28, 1), restore.RUNS)
    previous = _previous_results(results_path)
    rows = {v: r for v, r in previous.items() if v not in configs}  # kept, not rerun
    for variant, config in configs.items():
      workdir = os.path.join(_WORKDIR.value, variant)
      steps_run = []
      start = time.perf_counter()
      loop.train_and_evaluate(config, workdir, hooks=[lambda step, state: steps_run.append(step)])
      train_s = time.perf_counter() - start
      if not steps_run:  # already trained: keep the time of the run that trained it
        train_s = previous.get(variant, {}).get('train_seconds')
      saved, task, state = api.load_state(workdir)
      report = task.evaluate(
        task.inference_variables(state), datasets.load(saved.data), jax.random.PRNGKey(0)
      )
      rows[variant] = {
        'labelled_images': int(saved.data.num_train),
        'synthetic_fraction': (
          float(saved.augment.fraction) if saved.augment.generator_workdir else 0.0
        ),
        'generator_workdir': saved.augment.generator_workdir,
        'test_accuracy': report['accuracy'],
        'test_examples': report['num_examples'],
        'steps': int(state.step),
        'train_seconds': train_s,
      }
      logging.info(
        '%s: test accuracy %.4f on %d images', variant, report['accuracy'], report['num_examples']
      )
  rows = {v: rows[v] for v in mnist_augment.VARIANTS if v in rows}
  os.makedirs(_WORKDIR.value, exist_ok=True)
  with open(results_path + '.tmp', 'w') as f:
    json.dump({'variants': rows}, f, indent=2)
  os.replace(results_path + '.tmp', results_path)
  print(
    '| variant | labelled images | synthetic fraction | test accuracy | train s |\n'
    '|---|---|---|---|---|'
  )
  for variant, r in rows.items():
    seconds = '?' if r['train_seconds'] is None else f"{r['train_seconds']:.0f}"
    print(
      f"| {variant} | {r['labelled_images']:,} | {r['synthetic_fraction']:.2f} | "
      f"{r['test_accuracy']:.4f} | {seconds} |"
    )
  print(f'Wrote {results_path}')


if __name__ == '__main__':
  app.run(main, flags_parser=common.parse_flags)
