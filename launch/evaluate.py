r"""Evaluates a trained experiment on its full test set; writes WORKDIR/eval.json.

  python -m launch.evaluate --workdir=runs/mnist_vae                       # nll (IWAE k=1000)
  python -m launch.evaluate --workdir=runs/mnist_vae --iwae_samples=5000

Families report: VAE `nll`, `elbo`, `bits_per_dim`; AE `mse`, `psnr`, `pca_mse`,
`noisy_psnr`, `denoised_psnr`; both `anomaly_auroc` where the data has anomalies.
"""

import json
import os
import time

import jax
from absl import app, flags, logging

from genjax.data import datasets
from genjax.train import restore
from launch import common

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained experiment\'s workdir.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step; default the latest.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the evaluation\'s own randomness.')
_IWAE_SAMPLES = flags.DEFINE_integer('iwae_samples', None, 'VAE: override eval.iwae_samples.')
_IWAE_EXAMPLES = flags.DEFINE_integer('iwae_examples', None,
                                      'VAE: override eval.iwae_examples (0 = all).')
flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  with common.user_errors_exit():
    config, task, state = restore.load_state(_WORKDIR.value, _STEP.value)
    eval_config = config.eval
    if _IWAE_SAMPLES.value is not None:
      eval_config.iwae_samples = _IWAE_SAMPLES.value
    if _IWAE_EXAMPLES.value is not None:
      eval_config.iwae_examples = _IWAE_EXAMPLES.value
    data = datasets.load(config.data, workdir=_WORKDIR.value)
    start = time.perf_counter()
    results = task.evaluate(task.inference_variables(state), data, jax.random.PRNGKey(_SEED.value),
                            eval_config=eval_config)
    results = {'step': int(state.step), **results,
               'eval_seconds': round(time.perf_counter() - start, 2)}
    path = os.path.join(_WORKDIR.value, 'eval.json')
    with open(path + '.tmp', 'w') as f:
      json.dump(results, f, indent=2)
    os.replace(path + '.tmp', path)
    logging.info('Wrote %s', path)
    print(json.dumps(results, indent=2))


if __name__ == '__main__':
  app.run(main, flags_parser=common.parse_flags)
