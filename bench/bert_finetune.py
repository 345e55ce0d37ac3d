r"""Does pretraining help? experiments/stdlib_classify.py fine-tuned from the BERT of
experiments/stdlib_bert.py against the same encoder trained from scratch, with 100
labelled functions a class and with all of them.

  python -m launch.main --config=experiments/stdlib_bert.py --workdir=runs/bert
  python -m bench.bert_finetune --bert_workdir=runs/bert --workdir=runs/bert_finetune

Trains the four variants in WORKDIR/<variant> (resuming, or skipping, what is already
trained), evaluates each on all held-out functions, prints a markdown table and writes
WORKDIR/results.json with each variant's accuracies and the margins (pretrained minus
scratch, in held-out accuracy). The runs from scratch get the pretrained run's tokenizer
too, so that the start of the encoder is the only difference. --variants picks some.
"""

from __future__ import annotations

import json
import os
import time

import jax
from absl import app, flags, logging

from experiments import stdlib_classify
from genjax import api
from genjax.data import datasets
from genjax.run import init_from, loop
from launch import common

VARIANTS = ('pretrained_100', 'scratch_100', 'pretrained_all', 'scratch_all')

_WORKDIR = flags.DEFINE_string('workdir', None, 'Parent directory of the four runs.')
_BERT_WORKDIR = flags.DEFINE_string(
  'bert_workdir', 'runs/bert', 'The pretrained run (experiments/stdlib_bert.py).'
)
_LABELS = flags.DEFINE_integer('labels_per_class', 100, "The '_100' variants' labels a class.")
_STEPS = flags.DEFINE_integer('steps', 0, "Training steps; 0 = the experiment's.")
_VARIANTS = flags.DEFINE_list('variants', list(VARIANTS), 'Variants to run.')
flags.mark_flags_as_required(['workdir'])


def variant_config(variant: str):
  config = stdlib_classify.get_config()
  start, labels = variant.split('_')
  if start == 'pretrained':
    config.init_from = _BERT_WORKDIR.value
  config.data.num_labels_per_class = _LABELS.value if labels == '100' else 0
  if _STEPS.value:
    config.train.steps = _STEPS.value
  return config


def _write(path: str, rows: dict) -> tuple[dict, dict]:
  """Writes the variants (in VARIANTS order) and the margins they allow; returns both."""
  rows = {v: rows[v] for v in VARIANTS if v in rows}
  margins = {
    f'labels_{labels}': rows[f'pretrained_{labels}']['held_out_accuracy']
    - rows[f'scratch_{labels}']['held_out_accuracy']
    for labels in ('100', 'all')
    if f'pretrained_{labels}' in rows and f'scratch_{labels}' in rows
  }
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + '.tmp', 'w') as f:
    json.dump({'variants': rows, 'margins': margins}, f, indent=2)
  os.replace(path + '.tmp', path)
  return rows, margins


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  unknown = sorted(set(_VARIANTS.value) - set(VARIANTS))
  if unknown:
    raise app.UsageError(f'--variants: {unknown} are not among {VARIANTS}.')
  results_path = os.path.join(_WORKDIR.value, 'results.json')
  previous = {}
  if os.path.exists(results_path):
    with open(results_path) as f:
      previous = json.load(f).get('variants', {})
  rows = {v: r for v, r in previous.items() if v not in _VARIANTS.value}  # kept, not rerun
  with common.user_errors_exit():
    init_from.check_source(_BERT_WORKDIR.value, _WORKDIR.value)  # before any training
    for variant in _VARIANTS.value:
      config = variant_config(variant)
      workdir = os.path.join(_WORKDIR.value, variant)
      if not config.init_from:  # the same token ids as the pretrained runs
        init_from.copy_tokenizers(_BERT_WORKDIR.value, workdir)
      steps_run = []
      start = time.perf_counter()
      state = loop.train_and_evaluate(
        config, workdir, hooks=[lambda step, state: steps_run.append(step)]
      )
      if int(state.step) < config.train.steps:  # stopped by a signal: a partial run
        raise SystemExit(
          f'{variant} stopped at step {int(state.step)} of {config.train.steps}; run the same '
          'command again to resume it (finished variants are not trained again).'
        )
      train_s = (
        time.perf_counter() - start if steps_run else previous.get(variant, {}).get('train_seconds')
      )
      saved, task, state = api.load_state(workdir)
      report = task.evaluate(
        task.inference_variables(state),
        datasets.load(saved.data, workdir=workdir),
        jax.random.PRNGKey(0),
      )
      rows[variant] = {**report, 'steps': int(state.step), 'train_seconds': train_s}
      logging.info('%s: held-out accuracy %.4f', variant, report['held_out_accuracy'])
      _write(results_path, rows)  # after each variant: none is lost
  rows, margins = _write(results_path, rows)
  print('| variant | training functions | held-out accuracy | majority class | train s |')
  print('|---|---|---|---|---|')
  for variant, r in rows.items():
    seconds = '?' if r['train_seconds'] is None else f"{r['train_seconds']:.0f}"
    print(
      f"| {variant} | {r['num_train']:,} | {r['held_out_accuracy']:.4f} | "
      f"{r['majority_class_accuracy']:.4f} | {seconds} |"
    )
  for name, margin in margins.items():
    print(f'pretrained - scratch, {name.replace("_", " ")}: {100 * margin:+.1f} points')
  print(f'Wrote {results_path}')


if __name__ == '__main__':
  app.run(main, flags_parser=common.parse_flags)
