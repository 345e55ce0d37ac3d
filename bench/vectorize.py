r"""`launch.sweep --vectorize` against the same points run one after another.

  python -m bench.vectorize --steps=500

8 points of a small MNIST VAE (4 learning rates x 2 seeds) are trained twice in this
process, on one XLA device per core: one after another with `loop.train_and_evaluate`
(what `--parallel=1` runs, without the process start-ups; each run data-parallel over the
devices), then all at once with `vectorized.train_vectorized` (the points spread over the
devices).
Prints both wall times (compiles, evals and checkpoints included), the speed-up and the
largest relative difference between the two runs' train losses.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
from absl import app, flags, logging

from experiments import mnist_vae
from genjax.sweeps import product, vectorized
from genjax.run import loop
from genjax.writers.metrics import read_metrics
from launch import common

_STEPS = flags.DEFINE_integer('steps', 500, 'Training steps per point.')
_HIDDEN = flags.DEFINE_integer(
  'hidden',
  128,
  'Width of the one hidden layer: small VAEs are '
  'what vectorizing is for (a big one keeps the cores busy alone).',
)
_WORKDIR = flags.DEFINE_string('workdir', '', 'Where the runs go; empty: a temporary directory.')


def bench_config():
  c = mnist_vae.get_config()
  c.data.num_train, c.data.num_test, c.data.batch_size = 10_000, 1_000, 64
  c.model.hidden, c.model.latent_dim = (_HIDDEN.value,), 16
  c.optim.warmup_steps = 50
  c.train.steps = _STEPS.value
  c.train.log_every = 100
  c.train.eval_every = c.train.checkpoint_every = _STEPS.value
  c.train.sample_every = 0
  c.eval.num_examples = 1_000
  return c


def main(argv):
  del argv
  # One XLA device per core, before JAX's backend starts: a separate run then splits its
  # batch over the cores, and the vectorized group spreads its points over them.
  # XLA_FLAGS=--xla_force_host_platform_device_count=N overrides it.
  said = common.cpu_devices_per_core(None)
  logging.set_verbosity(logging.WARNING)
  if said:
    print(said, flush=True)
  root = _WORKDIR.value or tempfile.mkdtemp(prefix='bench_vectorize_')
  config = bench_config()
  points = product(**{'optim.learning_rate': [3e-4, 1e-3, 3e-3, 1e-2], 'seed': [0, 1]})
  separate = [os.path.join(root, f'separate_{i}') for i in range(len(points))]
  together = [os.path.join(root, f'vectorized_{i}') for i in range(len(points))]

  began = time.perf_counter()
  for point, workdir in zip(points, separate):
    loop.train_and_evaluate(vectorized.apply_point(config, point), workdir)
  separate_s = time.perf_counter() - began

  began = time.perf_counter()
  vectorized.train_vectorized(config, points, together)
  vectorized_s = time.perf_counter() - began

  def losses(workdir):
    return np.asarray([r['loss'] for r in read_metrics(workdir) if r['split'] == 'train'])

  diffs = [
    float(np.max(np.abs(losses(v) - losses(s)) / np.abs(losses(s))))
    for s, v in zip(separate, together)
  ]
  print(f'{len(points)} points x {config.train.steps} steps (hidden {_HIDDEN.value}) in {root}')
  print(f'one after another: {separate_s:.1f} s')
  print(f'vectorized:        {vectorized_s:.1f} s')
  print(f'speed-up:          {separate_s / vectorized_s:.2f}x')
  # Float rounding differs (a separate run splits its batch over the devices); training
  # amplifies it over the steps, the more the larger the learning rate.
  print(
    'max relative train-loss difference per point: '
    + ', '.join(
      f'{p["optim.learning_rate"]:g}/seed {p["seed"]}: {d:.1e}' for p, d in zip(points, diffs)
    )
  )


if __name__ == '__main__':
  app.run(main, flags_parser=common.parse_flags)
