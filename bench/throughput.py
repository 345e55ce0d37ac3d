r"""Train-step benchmark: steps/s on one XLA CPU device and on one per core, FLOP/s vs peak.

  python -m bench.throughput                                  # the default experiments
  python -m bench.throughput --experiments=mnist_vae,fruits_ae --steps=300
  python -m bench.throughput --device_counts=1 --strategy=pmap

Every figure comes from one run on this machine. The dense-matmul peak is measured first
(float32 matmuls, the best of several sizes). Then each experiment's real train step runs
through the real pipeline (prefetching thread, sharded placement) once for each XLA CPU
device count, each in its own process (XLA reads the count once, when JAX starts), the
counts' order alternating from one experiment to the next so that neither always runs
second. FLOPs per step are XLA's own count for the compiled step (`cost_analysis`), so
"% of peak" is what the step achieves against what this machine's matmul unit can do.

The table says which count was faster beside the one `launch.main` uses for the
experiment (`config.parallel.cpu_devices`, 0 = one per core): it is how an experiment's
choice is made and checked.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

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
_DEVICE_COUNTS = flags.DEFINE_list(
  'device_counts', ['1', '0'], 'XLA CPU device counts to time each step on (0 = one per core).'
)
_NUM_TRAIN = flags.DEFINE_integer(
  'num_train',
  10_000,
  'Training examples loaded (generation of 50k fruits takes ~10 s and does not change the step).',
)
_OUT = flags.DEFINE_string('out', None, 'Also write the table here as JSON.')
_WORKER = flags.DEFINE_bool(
  'worker', False, 'Internal: time --experiments[0] on this process\'s devices, print JSON.'
)


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


def _cores() -> int:
  return os.cpu_count() or 1


def run_worker(name: str, devices: int) -> dict:
  """bench_experiment(name) in a fresh process with `devices` XLA CPU devices."""
  flag = f'--xla_force_host_platform_device_count={devices}'
  command = [
    sys.executable,
    '-m',
    'bench.throughput',
    '--worker',
    f'--experiments={name}',
    f'--steps={_STEPS.value}',
    f'--warmup={_WARMUP.value}',
    f'--strategy={_STRATEGY.value}',
    f'--num_train={_NUM_TRAIN.value}',
  ]
  env = {**os.environ, 'XLA_FLAGS': f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()}
  done = subprocess.run(command, capture_output=True, text=True, env=env)
  if done.returncode:
    raise RuntimeError(f'{" ".join(command)} exited with {done.returncode}:\n{done.stderr[-3000:]}')
  return json.loads(done.stdout.strip().splitlines()[-1])


def _asked_counts() -> list[int]:
  """--device_counts, 0 read as one per core, without repeats, in the order given."""
  return list(dict.fromkeys(int(c) or _cores() for c in _DEVICE_COUNTS.value))


def _counts(batch: int) -> list[int]:
  """The asked device counts that divide the batch."""
  return [count for count in _asked_counts() if batch % count == 0]


def measure(index: int, name: str) -> dict:
  config = importlib.import_module(f'experiments.{name}').get_config()
  counts = _counts(config.data.batch_size)
  order = counts if index % 2 == 0 else counts[::-1]
  timed = {n: run_worker(name, n) for n in order}
  best = max(counts, key=lambda n: timed[n]['steps_per_s'])
  uses = config.parallel.get('cpu_devices', 0) or _cores()
  return {
    'batch': config.data.batch_size,
    'steps_per_s': {str(n): timed[n]['steps_per_s'] for n in counts},
    'fastest_devices': best,
    'launch_main_devices': uses,
    **{k: timed[best][k] for k in ('compile_s', 'data_wait', 'flops_per_step', 'flop_per_s')},
  }


def _uses(r: dict) -> str:
  """The count launch.main uses, and how much slower it is where it is not the fastest."""
  uses, best = r['launch_main_devices'], r['fastest_devices']
  rates = r['steps_per_s']
  if uses == best or str(uses) not in rates:
    return str(uses)
  return f'{uses} ({100 * (1 - rates[str(uses)] / rates[str(best)]):.0f}% slower)'


def main(argv):
  del argv
  if _WORKER.value:
    print(json.dumps(bench_experiment(_EXPERIMENTS.value[0])))
    return
  peak = matmul_peak()
  counts = sorted(_asked_counts())
  print(
    f'{_cores()} cores, {jax.devices()[0].device_kind}; strategy: {_STRATEGY.value}; '
    f'measured float32 matmul peak: {peak / 1e9:.1f} GFLOP/s'
  )
  header = (
    'experiment',
    'batch',
    *(f'steps/s, {n} device{"s" * (n > 1)}' for n in counts),
    'fastest',
    'launch.main uses',
    'compile s',
    'data wait',
    'GFLOP/step',
    'GFLOP/s',
    '% of peak',
  )
  print('| ' + ' | '.join(header) + ' |')
  print('|' + '---|' * len(header))
  rows, found = [], {}
  for index, name in enumerate(_EXPERIMENTS.value):
    r = found[name] = measure(index, name)
    rows.append(
      [
        name,
        r['batch'],
        *(f"{r['steps_per_s'][str(n)]:.1f}" if str(n) in r['steps_per_s'] else '' for n in counts),
        r['fastest_devices'],
        _uses(r),
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
        f'Strategy {_STRATEGY.value!r}, {_STEPS.value} timed steps each after {_WARMUP.value}, '
        f'each device count in its own process (orders alternating); the last five columns are '
        f'the fastest count\'s. Peak = the best float32 matmul measured in the same run, '
        f'{peak / 1e9:.1f} GFLOP/s; FLOPs are XLA\'s count of the step.'
      )
      json.dump(
        {
          'title': 'Train-step throughput of the image experiments, by XLA CPU device count',
          'summary': summary,
          'columns': list(header),
          'rows': rows,
          'experiments': found,
        },
        f,
        indent=2,
      )


if __name__ == '__main__':
  app.run(main)
