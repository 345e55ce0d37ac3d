r"""JAX against PyTorch on nanoGPT's CPU shakespeare_char, measured so neither side is handicapped.

  python -m bench.frameworks --workdir=runs/frameworks   # wall time: results/jax_vs_pytorch.json
  python -m bench.results --only=jax_vs_pytorch          # the same, kept as a record

The protocol:
  1. Same work. Our compiled train step (`experiments/shakespeare_char.py:cpu`: 4 layers,
     128 wide, context 64, batch 12) and the PyTorch reference `bench/torch_gpt.py`
     (nanoGPT's model and recipe) train on exactly the same tokens and batch positions,
     handed to PyTorch in an .npz.
  2. Whole processes, each alone on the machine: every run is a fresh interpreter that
     loads, compiles and trains `--steps` steps, and only one runs at a time. Both time the
     same steps, those after the first `--untimed_steps` (compilation, allocation, lazy
     initialisation), and report tokens/s over them.
  3. Each side at its best CPU settings, chosen by short runs first (`--settings_steps`):
     JAX with one XLA device per core or one device; PyTorch with one thread per core or
     one thread, then AdamW's `fused` against its `foreach` implementation, then
     `torch.compile` of the model against eager mode.
  4. A B A B: `--pairs` pairs of JAX then PyTorch, each followed by a control pair of
     PyTorch then PyTorch. The control measures what the protocol itself contributes
     (order, this machine's drift, which can reach tens of percent over minutes): its
     ratios should be 1. Reported: the median of the pair ratios (JAX tokens/s over
     PyTorch's) and their range, beside the control's. A side is called faster only when
     the pairs' range excludes 1 and an exact rank test (Mann-Whitney) tells the pairs'
     ratios from the control's at p < 0.05 (5 pairs can reach p = 0.008, 3 only 0.1);
     otherwise "parity".
Writes WORKDIR/frameworks.json (the figures, every run, and a table `bench.results` keeps).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

_WORKDIR = flags.DEFINE_string('workdir', None, 'Where the token file and results go.')
_STEPS = flags.DEFINE_integer('steps', 600, 'Training steps of every measured run.')
_SETTINGS_STEPS = flags.DEFINE_integer('settings_steps', 300, 'Steps of each settings run.')
_UNTIMED = flags.DEFINE_integer(
  'untimed_steps', 50, 'First steps of every run left out of the timing (one JAX call).'
)
_PAIRS = flags.DEFINE_integer('pairs', 5, 'A B pairs, and control pairs (at least 3).')
_TORCH_PYTHON = flags.DEFINE_string(
  'torch_python', sys.executable, 'An interpreter with torch installed (PyTorch runs there).'
)
_WORKER = flags.DEFINE_enum(
  'worker', None, ['jax'], 'Internal: run one JAX measurement and print it as JSON.'
)
_TOKENS = flags.DEFINE_string('tokens_npz', None, 'Internal: the shared token file.')
_DEVICES = flags.DEFINE_integer('devices', 0, 'Internal: XLA CPU devices of a JAX worker.')

TORCH_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'torch_gpt.py')


def _config(steps: int):
  from experiments import shakespeare_char  # pylint: disable=import-outside-toplevel

  config = shakespeare_char.get_config('cpu')
  config.train.steps = steps
  return config


def write_tokens(path: str, steps: int) -> None:
  """The exact tokens, batch starts and validation windows of our pipeline, for PyTorch."""
  import numpy as np  # pylint: disable=import-outside-toplevel

  from genjax.data import datasets  # pylint: disable=import-outside-toplevel

  config = _config(steps)
  data = datasets.load(config.data)
  source = data.train_source(config.data.batch_size, config.seed)
  starts = np.stack([source.starts(s) for s in range(steps)])
  block = config.data.block_size
  train_tokens = data.extras['train_tokens']
  first = source.batch(0)['tokens']
  assert np.array_equal(first[0], train_tokens[starts[0, 0] : starts[0, 0] + block + 1])
  np.savez(
    path,
    train_tokens=train_tokens.astype(np.int64),
    starts=starts,
    val_windows=data.test['tokens'].astype(np.int64),
    vocab_size=np.int64(data.extras['tokenizer'].vocab_size),
  )


def jax_worker() -> dict:
  """One JAX run in this process: `--steps` steps, tokens/s over those after the untimed."""
  import jax  # pylint: disable=import-outside-toplevel

  from bench import steps as bench_steps  # pylint: disable=import-outside-toplevel

  config = _config(_STEPS.value)
  per_call = config.train.steps_per_call
  if _UNTIMED.value % per_call or _STEPS.value % per_call:
    raise app.UsageError(f'--steps and --untimed_steps must be multiples of {per_call}')
  mesh, data, task, source, state, step = bench_steps.setup(config)
  with bench_steps.prefetcher(source, mesh, config, _STEPS.value) as batches:
    state, _ = bench_steps.run_steps(step, state, batches, _UNTIMED.value // per_call)
    calls = (_STEPS.value - _UNTIMED.value) // per_call
    state, seconds = bench_steps.run_steps(step, state, batches, calls)
  timed = _STEPS.value - _UNTIMED.value
  return {
    'tokens_per_s': timed * config.data.batch_size * config.data.block_size / seconds,
    'train_seconds': seconds,
    'val_loss': float(task.evaluate(state.params, data, jax.random.PRNGKey(0))['loss']),
    'devices': jax.device_count(),
    'steps_per_call': per_call,
    'jax_version': jax.__version__,
  }


def _run(command: list[str], env: dict | None = None) -> dict:
  done = subprocess.run(
    command, capture_output=True, text=True, env=None if env is None else {**os.environ, **env}
  )
  if done.returncode:
    raise RuntimeError(f'{" ".join(command)} exited with {done.returncode}:\n{done.stderr[-3000:]}')
  return json.loads(done.stdout.strip().splitlines()[-1])


def run_jax(settings: dict, steps: int, npz: str) -> dict:
  flag = f'--xla_force_host_platform_device_count={settings["devices"]}'
  command = [
    sys.executable,
    '-m',
    'bench.frameworks',
    '--worker=jax',
    f'--steps={steps}',
    f'--untimed_steps={_UNTIMED.value}',
  ]
  del npz  # the worker builds the same batches from our pipeline (write_tokens checks it)
  return _run(command, env={'XLA_FLAGS': flag})


def run_torch(settings: dict, steps: int, npz: str) -> dict:
  config = _config(steps)
  m, o = config.model, config.optim
  command = [
    _TORCH_PYTHON.value,
    TORCH_SCRIPT,
    '--quiet',
    f'--tokens_npz={npz}',
    f'--steps={steps}',
    f'--untimed_steps={_UNTIMED.value}',
    f'--n_layer={m.num_layers}',
    f'--n_head={m.num_heads}',
    f'--n_embd={m.width}',
    f'--dropout={m.dropout}',
    f'--lr={o.learning_rate}',
    f'--min_lr={o.learning_rate * o.end_learning_rate_factor}',
    f'--warmup_iters={o.warmup_steps}',
    f'--beta2={o.b2}',
    f'--threads={settings["threads"]}',
    f'--adamw={settings["adamw"]}',
    *(['--compile'] if settings['compile'] else []),
  ]
  return _run(command)


def _name(side: str, settings: dict) -> str:
  if side == 'jax':
    return f'JAX, {settings["devices"]} XLA device(s)'
  return f'PyTorch, {settings["threads"]} thread(s), AdamW {settings["adamw"]}' + (
    ', torch.compile' if settings['compile'] else ', eager'
  )


def choose_settings(npz: str, log: list) -> tuple[dict, dict]:
  """The fastest settings of each side, by one short run of each candidate."""
  steps, cores = _SETTINGS_STEPS.value, os.cpu_count() or 1

  def measure(side, settings):
    result = (run_jax if side == 'jax' else run_torch)(settings, steps, npz)
    log.append({'phase': 'settings', 'side': side, 'settings': settings, **result})
    print(f'settings: {_name(side, settings)}: {result["tokens_per_s"]:.0f} tokens/s', flush=True)
    return result['tokens_per_s']

  best_jax = max(
    ({'devices': d} for d in sorted({cores, 1}, reverse=True)), key=lambda s: measure('jax', s)
  )
  torch = {'threads': cores, 'adamw': 'foreach', 'compile': False}
  for field, options in (
    ('threads', sorted({cores, 1}, reverse=True)),
    ('adamw', ['foreach', 'fused']),
    ('compile', [False, True]),
  ):
    speeds = {}
    for option in options:
      candidate = dict(torch, **{field: option})
      try:
        speeds[option] = measure('torch', candidate)
      except RuntimeError as e:  # e.g. torch.compile without a working C++ compiler
        print(f'settings: {_name("torch", candidate)} failed: {str(e)[-300:]}', flush=True)
    torch[field] = max(speeds, key=speeds.get)
  return best_jax, torch


def _spread(ratios: list[float]) -> dict:
  return {
    'median': statistics.median(ratios),
    'min': min(ratios),
    'max': max(ratios),
    'ratios': ratios,
  }


def rank_test_p(x: list[float], y: list[float]) -> float:
  """Exact two-sided Mann-Whitney p-value: how often a split of the pooled values into
  groups of len(x) and len(y) is at least as lopsided as the observed one.

  Small samples only (every split is enumerated: 252 for 5 and 5); no normal approximation.
  """
  pooled = list(x) + list(y)
  centre = len(x) * len(y) / 2

  def u(first):
    rest = [v for i, v in enumerate(pooled) if i not in first]
    return sum((a > b) + 0.5 * (a == b) for a in (pooled[i] for i in first) for b in rest)

  observed = abs(u(set(range(len(x)))) - centre)
  splits = [abs(u(set(c)) - centre) for c in itertools.combinations(range(len(pooled)), len(x))]
  return sum(d >= observed - 1e-12 for d in splits) / len(splits)


def verdict(ratios: list[float], control: list[float], level: float = 0.05) -> tuple[str, float]:
  """(verdict, p): a side is faster only when the A B ratios exclude 1 and differ from the
  control's ratios (the protocol's own spread) by the rank test at `level`; else parity."""
  p = rank_test_p(ratios, control)
  if min(ratios) <= 1.0 <= max(ratios) or p >= level:
    return f'parity (no difference beyond the control\'s spread: rank test p = {p:.3f})', p
  side = 'JAX' if statistics.median(ratios) > 1 else 'PyTorch'
  return f'{side} faster (rank test against the control: p = {p:.3f})', p


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if _WORKER.value == 'jax':
    print(json.dumps(jax_worker()))
    return
  if not _WORKDIR.value:
    raise app.UsageError('--workdir is required.')
  if _PAIRS.value < 3:
    raise app.UsageError(f'--pairs={_PAIRS.value}: the protocol needs at least 3 pairs.')
  found = subprocess.run([_TORCH_PYTHON.value, '-c', 'import torch'], capture_output=True)
  if found.returncode:
    raise app.UsageError(
      f'PyTorch is not installed for {_TORCH_PYTHON.value}: pip install torch==2.13.0 '
      '--index-url https://download.pytorch.org/whl/cpu, or name an interpreter that has '
      'it with --torch_python.'
    )
  os.makedirs(_WORKDIR.value, exist_ok=True)
  npz = os.path.join(_WORKDIR.value, 'tokens.npz')
  write_tokens(npz, max(_STEPS.value, _SETTINGS_STEPS.value))
  start = time.perf_counter()
  runs: list[dict] = []
  jax_settings, torch_settings = choose_settings(npz, runs)
  a, b = _name('jax', jax_settings), _name('torch', torch_settings)
  print(f'A = {a}; B = {b}', flush=True)

  def one(phase, side, settings):
    result = (run_jax if side == 'jax' else run_torch)(settings, _STEPS.value, npz)
    runs.append({'phase': phase, 'side': side, 'settings': settings, **result})
    print(f'{phase}: {_name(side, settings)}: {result["tokens_per_s"]:.0f} tokens/s', flush=True)
    return result

  pairs, control = [], []
  for _ in range(_PAIRS.value):  # interleaved, so that drift reaches both alike
    pairs.append((one('pair', 'jax', jax_settings), one('pair', 'torch', torch_settings)))
    control.append(
      (one('control', 'torch', torch_settings), one('control', 'torch', torch_settings))
    )
  ratio = _spread([x['tokens_per_s'] / y['tokens_per_s'] for x, y in pairs])
  control_ratio = _spread([x['tokens_per_s'] / y['tokens_per_s'] for x, y in control])
  said, p = verdict(ratio['ratios'], control_ratio['ratios'])
  parity = said.startswith('parity')
  summary = (
    f'JAX / PyTorch tokens/s: median **{ratio["median"]:.3f}** over {len(pairs)} A B pairs '
    f'(range {ratio["min"]:.3f}–{ratio["max"]:.3f}): {said}. Control, PyTorch against '
    f'itself, a pair after each A B pair: median {control_ratio["median"]:.3f} (range '
    f'{control_ratio["min"]:.3f}–{control_ratio["max"]:.3f}). A = {a}; B = {b}; '
    f'{_STEPS.value} steps a run, timed '
    f'after the first {_UNTIMED.value}; validation loss after {_STEPS.value} steps: JAX '
    f'{pairs[0][0]["val_loss"]:.4f}, PyTorch {pairs[0][1]["val_loss"]:.4f}.'
  )
  print(summary, flush=True)
  rows = [
    [
      r['phase'],
      _name(r['side'], r['settings']),
      f'{r["tokens_per_s"]:.0f}',
      f'{r["val_loss"]:.4f}',
    ]
    for r in runs
  ]
  result = {
    'title': 'JAX against PyTorch: shakespeare_char:cpu train step, whole processes, A B A B',
    'summary': summary,
    'columns': ['phase', 'run (in the order run)', 'tokens/s', 'validation loss'],
    'rows': rows,
    'ratio': ratio,
    'control_ratio': control_ratio,
    'parity': parity,
    'rank_test_p': p,
    'jax_settings': jax_settings,
    'torch_settings': torch_settings,
    'steps': _STEPS.value,
    'untimed_steps': _UNTIMED.value,
    'runs': runs,
    'wall_seconds': time.perf_counter() - start,
  }
  with open(os.path.join(_WORKDIR.value, 'frameworks.json'), 'w') as f:
    json.dump(result, f, indent=2)


if __name__ == '__main__':
  app.run(main)
