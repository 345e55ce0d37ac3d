"""Hyperparameter sweeps: the points (spec), running them (local, slurm), the table (summary).

    from genjax.sweeps import product, log_uniform, random_points
    def get_sweep():   # in an experiment file, beside get_config()
      return product(**{'optim.learning_rate': [1e-3, 3e-4], 'seed': [0, 1]})

Run with `python -m launch.sweep --config=experiments/NAME.py --workdir=DIR`.
"""

from genjax.sweeps.spec import (
  chain,
  choice,
  combine,
  log_uniform,
  product,
  random_points,
  run_name,
  uniform,
  validate,
  zip_axes,
)

__all__ = [
  'chain',
  'choice',
  'combine',
  'log_uniform',
  'product',
  'random_points',
  'run_name',
  'uniform',
  'validate',
  'zip_axes',
]
