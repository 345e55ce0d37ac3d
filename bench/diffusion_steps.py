r"""Classifier FID of a trained diffusion or flow run against its sampler's step count.

  python -m bench.diffusion_steps --workdir=runs/mnist_diffusion
  python -m bench.diffusion_steps --workdir=runs/mnist_flow --samplers=euler,heun
  python -m bench.diffusion_steps --workdir=runs/mnist_diffusion --steps=10,50 --num_samples=500

For each sampler and step count, the run's EMA weights draw `num_samples` images from the
same noise (and the same classes, with the run's guidance), and the run's classifier
(eval.classifier_workdir) scores them as launch.evaluate does: FID, Inception Score,
precision, recall, label accuracy. Written to OUT/diffusion_steps.json with the model
calls per sample (nfe) and the wall time of each setting (sampling, compilation and
scoring), and plotted, FID against model calls, one line per sampler, in
OUT/diffusion_steps.png. OUT defaults to the workdir.
"""

from __future__ import annotations

import json
import math
import os
import time

import jax
import numpy as np
from absl import app, flags, logging
from PIL import Image, ImageDraw

from genjax import api, tasks
from genjax.config import ConfigError
from genjax.data import datasets
from genjax.run import restore
from genjax.tasks.diffusion_views import Settings
from launch import common

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained diffusion run.')
_STEPS = flags.DEFINE_list('steps', ['5', '10', '20', '50', '100'], 'Sampler step counts.')
_SAMPLERS = flags.DEFINE_list(
  'samplers', [], "Samplers to compare ('ddim', 'ddpm', 'euler', 'heun'); default the run's."
)
_NUM_SAMPLES = flags.DEFINE_integer(
  'num_samples', 0, 'Samples scored per setting; 0 = the run\'s eval.num_samples.'
)
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the noise (the same for every setting).')
_OUT = flags.DEFINE_string('out', None, 'Folder of the JSON and the PNG; default the workdir.')
flags.mark_flags_as_required(['workdir'])

METRICS = ('fid', 'inception_score', 'precision', 'recall', 'label_accuracy')


def measure(workdir: str, samplers, step_counts, num_samples: int, seed: int) -> dict:
  config, _, state = api.load_state(workdir)
  if config.task != 'diffusion':
    raise ConfigError(
      f'{workdir} holds a {config.task!r} run; this benchmark needs a diffusion run.'
    )
  classifier = config.eval.classifier_workdir
  if not classifier or not os.path.exists(os.path.join(classifier, 'config.json')):
    raise FileNotFoundError(
      f'eval.classifier_workdir={classifier!r} of {workdir} holds no trained classifier; '
      'train the classifier experiment of the same dataset there first.'
    )
  data = datasets.load(config.data, workdir=workdir)
  config.eval.num_examples = num_samples or config.eval.num_samples
  rows = []
  for sampler in samplers or [config.sample.sampler]:
    for steps in step_counts:
      config.sample.sampler, config.sample.steps = sampler, steps
      if sampler != 'ddim':
        config.sample.eta = 0.0  # the others fix their own noise
      task = tasks.build(config, data.spec, restore.RUNS)
      start = time.perf_counter()
      scores = task.corpus_metrics(task.inference_variables(state), data, jax.random.PRNGKey(seed))
      row = {
        'sampler': sampler,
        'steps': steps,
        'nfe': Settings.of(config.sample).nfe,
        'seconds': round(time.perf_counter() - start, 2),
        **{k: scores[k] for k in METRICS if k in scores},
      }
      logging.info('%s', row)
      rows.append(row)
  fid_by_steps = {}  # {sampler: {steps: fid}}, the shape bench.results reads
  for row in rows:
    if 'fid' in row:
      fid_by_steps.setdefault(row['sampler'], {})[str(row['steps'])] = row['fid']
  return {
    'workdir': os.path.abspath(workdir),
    'step': int(state.step),
    'num_samples': config.eval.num_examples,
    'guidance': config.sample.guidance,
    'eta': config.sample.eta,
    'results': rows,
    'fid_by_steps': fid_by_steps,
  }


def plot(results: dict, path: str, size=(640, 420)) -> None:
  """FID against model calls per sample (log scale), one line per sampler: a plain PNG."""
  width, height = size
  left, right, top, bottom = 60, 110, 20, 45
  image = Image.new('RGB', size, 'white')
  draw = ImageDraw.Draw(image)
  rows = [r for r in results['results'] if 'fid' in r]
  if not rows:
    image.save(path)
    return
  xs = [math.log(r['nfe']) for r in rows]
  ys = [r['fid'] for r in rows]
  x_lo, x_hi = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
  y_lo, y_hi = 0.0, max(ys) * 1.05 or 1.0
  to_px = lambda x, y: (
    left + (x - x_lo) / (x_hi - x_lo) * (width - left - right),
    height - bottom - (y - y_lo) / (y_hi - y_lo) * (height - top - bottom),
  )
  draw.line([(left, top), (left, height - bottom), (width - right, height - bottom)], 'black')
  last_px, lowered = -math.inf, False
  for nfe in sorted({r['nfe'] for r in rows}):
    px, _ = to_px(math.log(nfe), 0)
    draw.line([(px, height - bottom), (px, height - bottom + 4)], 'black')
    # A label too close to the one before (19 and 20 calls) goes a line lower.
    lowered = px - last_px < 20 and not lowered
    draw.text((px - 6, height - bottom + 6 + 10 * lowered), str(nfe), fill='black')
    last_px = px
  for y in np.linspace(y_lo, y_hi, 5):
    _, py = to_px(x_lo, y)
    draw.text((5, py - 6), f'{y:.1f}', fill='black')
  draw.text((left + 120, height - 15), 'model calls per sample (log scale)', fill='black')
  draw.text((left + 5, top - 15), 'FID', fill='black')
  colours = ('#1f77b4', '#d62728', '#2ca02c', '#9467bd')
  for i, sampler in enumerate(dict.fromkeys(r['sampler'] for r in rows)):
    points = [to_px(math.log(r['nfe']), r['fid']) for r in rows if r['sampler'] == sampler]
    colour = colours[i % len(colours)]
    if len(points) > 1:
      draw.line(points, colour, width=2)
    for x, y in points:
      draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    draw.text((width - right + 10, top + 15 * i), sampler, fill=colour)
  image.save(path)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  said = common.cpu_devices_per_core(None)  # before JAX starts: samplers use every core
  if said:
    logging.info(said)
  with common.user_errors_exit():
    results = measure(
      _WORKDIR.value,
      _SAMPLERS.value,
      [int(s) for s in _STEPS.value],
      _NUM_SAMPLES.value,
      _SEED.value,
    )
    out = _OUT.value or _WORKDIR.value
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'diffusion_steps.json'), 'w') as f:
      json.dump(results, f, indent=2)
    plot(results, os.path.join(out, 'diffusion_steps.png'))
    print(json.dumps(results, indent=2))
    logging.info('Wrote %s', os.path.join(out, 'diffusion_steps.png'))


if __name__ == '__main__':
  app.run(main, flags_parser=common.parse_flags)
