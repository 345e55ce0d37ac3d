r"""One-class MNIST anomaly detection over all ten digits: per-digit AUROC and the mean.

  python -m bench.one_class_mnist --workdir=runs/one_class
  python -m bench.one_class_mnist --workdir=runs/one_class_vae --config=experiments/mnist_vae.py \
      --config.train.steps=3000

For each digit d it trains the experiment with `data.digits=(d,)` in WORKDIR/digit_d (or
resumes/skips it if already trained), evaluates it on the whole test set (digit d normal,
the other nine anomalous) and writes WORKDIR/summary.json. This is the protocol of Ruff
et al. 2018 (Deep SVDD), which reports a mean of 0.948.
"""

from __future__ import annotations

import json
import os
import time

import jax
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from genjax.data import datasets
from genjax import api
from genjax.run import loop
from launch import common

_CONFIG = config_flags.DEFINE_config_file(
  'config', 'experiments/mnist_anomaly_ae.py', 'One-class experiment config.'
)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Parent directory of the ten runs.')
_DIGITS = flags.DEFINE_list('digits', [str(d) for d in range(10)], 'Digits to run.')
flags.mark_flags_as_required(['workdir'])


def main(argv):
  del argv
  rows = {}
  for digit in map(int, _DIGITS.value):
    config = _CONFIG.value.copy_and_resolve_references()
    config.data.digits = (digit,)
    workdir = os.path.join(_WORKDIR.value, f'digit_{digit}')
    start = time.perf_counter()
    loop.train_and_evaluate(config, workdir)
    train_s = time.perf_counter() - start
    _, task, state = api.load_state(workdir)
    results = task.evaluate(
      task.inference_variables(state), datasets.load(config.data), jax.random.PRNGKey(0)
    )
    rows[digit] = {'anomaly_auroc': results['anomaly_auroc'], 'train_seconds': train_s}
    logging.info('digit %d: AUROC %.4f (%.0f s)', digit, results['anomaly_auroc'], train_s)
  mean = float(np.mean([r['anomaly_auroc'] for r in rows.values()]))
  summary = {'mean_anomaly_auroc': mean, 'per_digit': rows}
  with open(os.path.join(_WORKDIR.value, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  print('| digit | AUROC | train s |\n|---|---|---|')
  for digit, r in rows.items():
    print(f"| {digit} | {r['anomaly_auroc']:.4f} | {r['train_seconds']:.0f} |")
  print(f'| mean | {mean:.4f} | |')


if __name__ == '__main__':
  app.run(main, flags_parser=common.parse_flags)
