"""A tiny sweep for tests and for trying launch.sweep by hand (seconds a point):

  python -m launch.sweep --config=tests/tiny_sweep.py --workdir=/tmp/sw --parallel=2

Three points of tests/tiny.py's VAE; the 1e30 learning rate makes the loss NaN, so one
point fails on purpose (the loop's NaN check) while the other two finish. The tests pick
other sweeps by name: --config=tests/tiny_sweep.py:one (or bad_field, bad_type, empty).
"""

from genjax.sweeps import chain, product
from tests import tiny


def get_config(variant='three'):
  del variant  # one config; the variant picks the sweep
  c = tiny.vae(steps=8)
  c.train.sample_every = 0  # no sample grids: a second less per point
  return c


def get_sweep(variant='three'):
  return {
    'three': chain(
      product(**{'optim.learning_rate': [1e-3, 3e-3], 'seed': [0]}),
      [{'optim.learning_rate': 1e30, 'seed': 0}],
    ),
    'one': [{'optim.learning_rate': 1e-3, 'seed': 0}],
    'bad_field': [{'optim.learning_rat': 1e-3}],
    'bad_type': [{'train.steps': 2.5}],
    'empty': [],
  }[variant]
