r"""Train-step benchmark: examples/s, compile time, data wait, FLOP/s vs measured peak.

  python -m bench.throughput                                  # the default experiments
  python -m bench.throughput --experiments=mnist_vae,fruits_ae --steps=300
  python -m bench.throughput --strategy=pmap

Every figure comes from one run on this machine: the dense-matmul peak is measured first
(float32 matmuls, the best of several sizes), then each experiment's real train step runs
through the real pipeline (prefetching thread, sharded placement). FLOPs per step are
XLA's own count for the compiled step (`cost_analysis`), so "% of peak" is what the step
achieves against what this machine's matmul unit can do.
"""

from __future__ import annotations

import importlib
import json

import jax
from absl import app, flags

from bench import steps as bench_steps
from bench.peak import matmul_peak
from genjax.data import pipeline
from genjax.step import parallel

_EXPERIMENTS = flags.DEFINE_list(
  'experiments',
  [
    'mnist_vae',
    'mnist_ae',
    'fruits_vae',
    'fruits_ae',
    'mnist_dcgan',
    'fruits_dcgan',
    'mnist_classifier',
  ],
  'Experiment modules under experiments/.',
)
_STEPS = flags.DEFINE_integer('steps', 200, 'Timed steps per experiment (after warmup).')
_WARMUP = flags.DEFINE_integer('warmup', 20, 'Untimed steps after compilation.')
_STRATEGY = flags.DEFINE_string('strategy', 'jit', "'jit' or 'pmap'.")
_NUM_TRAIN = flags.DEFINE_integer(
  'num_train',
  10_000,
  'Training examples loaded (generation of 50k fruits takes ~10 s and does not change the step).',
)
_OUT = flags.DEFINE_string('out', None, 'Also write the table here as JSON.')


def bench_experiment(name: str) -> dict:
  config = importlib.import_module(f'experiments.{name}').get_config()
  config.parallel.strategy = _STRATEGY.value
  config.data.num_train = _NUM_TRAIN.value
  config.data.num_test = 1000
  mesh, _, _, source, state, step = bench_steps.setup(config)
  batch_size = config.data.batch_size
  with pipeline.Prefetcher(source, parallel.batch_sharding(mesh)) as batches:
    first = next(batches)
    compiled, compile_s, flops = bench_steps.compile_step(step, state, first)
    state, _ = compiled(state, first)
    state, _ = bench_steps.run_steps(compiled, state, batches, _WARMUP.value)
    wait_before = batches.wait_seconds
    state, elapsed = bench_steps.run_steps(compiled, state, batches, _STEPS.value)
    wait = batches.wait_seconds - wait_before
  return {
    'experiment': name,
    'batch': batch_size,
    'examples_per_s': _STEPS.value * batch_size / elapsed,
    'steps_per_s': _STEPS.value / elapsed,
    'compile_s': compile_s,
    'data_wait': wait / elapsed,
    'flops_per_step': flops,
    'flop_per_s': flops * _STEPS.value / elapsed,
  }


def main(argv):
  del argv
  peak = matmul_peak()
  print(
    f'devices: {jax.device_count()} x {jax.devices()[0].device_kind}; '
    f'strategy: {_STRATEGY.value}; measured float32 matmul peak: {peak / 1e9:.1f} GFLOP/s'
  )
  header = (
    'experiment',
    'batch',
    'examples/s',
    'steps/s',
    'compile s',
    'data wait',
    'GFLOP/step',
    'GFLOP/s',
    '% of peak',
  )
  print('| ' + ' | '.join(header) + ' |')
  print('|' + '---|' * len(header))
  rows = []
  for name in _EXPERIMENTS.value:
    r = bench_experiment(name)
    rows.append(
      [
        r['experiment'],
        r['batch'],
        f"{r['examples_per_s']:.0f}",
        f"{r['steps_per_s']:.1f}",
        f"{r['compile_s']:.2f}",
        f"{100 * r['data_wait']:.2f}%",
        f"{r['flops_per_step'] / 1e9:.3f}",
        f"{r['flop_per_s'] / 1e9:.1f}",
        f"{100 * r['flop_per_s'] / peak:.1f}%",
      ]
    )
    print('| ' + ' | '.join(map(str, rows[-1])) + ' |', flush=True)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      summary = (
        f'{jax.device_count()} XLA device(s), strategy {_STRATEGY.value!r}, {_STEPS.value} '
        f'timed steps each after {_WARMUP.value}; peak = the best float32 matmul measured '
        f'in the same run, {peak / 1e9:.1f} GFLOP/s; FLOPs are XLA\'s count of the step.'
      )
      json.dump(
        {
          'title': 'Train-step throughput of the image experiments',
          'summary': summary,
          'columns': list(header),
          'rows': rows,
        },
        f,
        indent=2,
      )


if __name__ == '__main__':
  app.run(main)
