r"""Language-model benchmark: JAX vs PyTorch, FLOP/s vs this machine's peak, cached decoding.

  python -m bench.lm                                   # all three parts
  python -m bench.lm --parts=torch --torch_python=/work/torchvenv/bin/python
  python -m bench.lm --parts=flops,generation

Parts (every figure from this one run on this machine):
  torch       nanoGPT's CPU shakespeare_char model (4 layers, 128 wide, context 64, batch
              12) trained `--steps` steps by our compiled step, then by the PyTorch
              reference `bench/torch_gpt.py` on exactly the same tokens, batch positions
              and validation windows (handed over in an .npz). Reports tokens/s of each,
              their ratio, wall time and validation loss. PyTorch runs in its own
              interpreter (`--torch_python`: a venv with torch==2.13.0; see torch_gpt.py).
              The order is JAX, PyTorch at each thread count, JAX again, and the best run
              of each is compared: this machine's speed drifts by tens of percent over
              minutes, and the interleaving keeps the drift from favouring either side.
  flops       the default size (6 layers, 384 wide, context 256, batch 64): XLA's FLOP
              count of the compiled train step over its best time of `--flops_steps`,
              against the float32 matmul peak measured first (`bench.peak.matmul_peak`,
              also a best time).
  generation  500 new tokens with the key/value cache vs nanoGPT's recompute-the-context
              loop (`generate_uncached`), batch 1, both compiled; tokens/s and the speed-up,
              the best of `--generation_repeats` interleaved runs of each.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import time

# One XLA device per core, before JAX starts: the data-parallel step then keeps every
# core busy (PyTorch gets the same cores as intra-op threads). Set XLA_FLAGS to override.
os.environ.setdefault('XLA_FLAGS', f'--xla_force_host_platform_device_count={os.cpu_count()}')

import jax  # pylint: disable=wrong-import-position
import numpy as np
from absl import app, flags

from bench import steps as bench_steps
from bench.peak import matmul_peak
from experiments import shakespeare_char
from genjax import tasks
from genjax.data import datasets, pipeline
from genjax.models import decoding
from genjax.train import parallel

_PARTS = flags.DEFINE_list('parts', ['torch', 'flops', 'generation'], 'Which parts to run.')
_STEPS = flags.DEFINE_integer('steps', 2000, 'torch part: training steps of each framework.')
_TORCH_PYTHON = flags.DEFINE_string('torch_python', '/work/torchvenv/bin/python',
                                    'An interpreter with torch==2.13.0 installed.')
_TORCH_THREADS = flags.DEFINE_list('torch_threads', ['2', '1'],
                                   'torch.set_num_threads values to try; the best is compared.')
_FLOPS_STEPS = flags.DEFINE_integer('flops_steps', 5, 'flops part: steps timed one by one '
                                     '(after one); the best is reported.')
_NEW_TOKENS = flags.DEFINE_integer('new_tokens', 500, 'generation part: tokens to generate.')
_GEN_REPEATS = flags.DEFINE_integer('generation_repeats', 3,
                                    'generation part: timed runs of each, interleaved.')
_ATTENTION = flags.DEFINE_string('attention', 'auto', "model.attention for every part: 'auto' "
                                 "| 'xla' | 'einsum' | 'cudnn'.")

TORCH_SCRIPT = os.path.join(os.path.dirname(__file__), 'torch_gpt.py')


def train_jax(config, steps: int, data) -> dict:
  """Our step on our pipeline, timed as torch_gpt.py times PyTorch (steps 2..N)."""
  mesh, data, task, source, state, step = bench_steps.setup(config, data)
  with pipeline.Prefetcher(source, parallel.batch_sharding(mesh)) as batches:
    state, first_step_s = bench_steps.run_steps(step, state, batches, 1)  # with compile
    state, train_s = bench_steps.run_steps(step, state, batches, steps - 1)
  tokens = (steps - 1) * config.data.batch_size * config.data.block_size
  report = task.evaluate(state.params, data, jax.random.PRNGKey(0))
  return {'train_seconds': train_s, 'tokens_per_s': tokens / train_s,
          'first_step_seconds': first_step_s, 'val_loss': report['loss'],
          'wall_seconds': first_step_s + train_s}


def _torch_inputs(config, data, steps: int, path: str) -> None:
  """The exact tokens, batch starts and validation windows of the JAX run, for PyTorch."""
  source = data.train_source(config.data.batch_size, config.seed)
  starts = np.stack([source.starts(s) for s in range(steps)])
  first = source.batch(0)['tokens']
  block = config.data.block_size
  assert np.array_equal(first[0], data.train_tokens[starts[0, 0]:starts[0, 0] + block + 1])
  np.savez(path, train_tokens=data.train_tokens.astype(np.int64), starts=starts,
           val_windows=data.test['tokens'].astype(np.int64),
           vocab_size=np.int64(data.tokenizer.vocab_size))


def train_torch(config, data, steps: int, threads: str) -> dict:
  with tempfile.TemporaryDirectory() as tmp:
    npz = os.path.join(tmp, 'tokens.npz')
    _torch_inputs(config, data, steps, npz)
    m = config.model
    cmd = [_TORCH_PYTHON.value, TORCH_SCRIPT, f'--tokens_npz={npz}', f'--steps={steps}',
           f'--n_layer={m.num_layers}', f'--n_head={m.num_heads}', f'--n_embd={m.width}',
           f'--dropout={m.dropout}', f'--lr={config.optim.learning_rate}',
           f'--min_lr={config.optim.learning_rate * config.optim.end_learning_rate_factor}',
           f'--warmup_iters={config.optim.warmup_steps}', f'--beta2={config.optim.b2}',
           f'--threads={threads}', '--quiet']
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
  if out.returncode != 0:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{out.stderr[-3000:]}')
  result = json.loads(out.stdout.strip().splitlines()[-1])
  result['process_wall_seconds'] = wall
  return result


def part_torch() -> None:
  config = shakespeare_char.get_config('cpu')
  config.model.attention = _ATTENTION.value
  config.train.steps = _STEPS.value
  data = datasets.load(config.data)
  print(f'## JAX vs PyTorch: shakespeare_char:cpu, {_STEPS.value} steps, '
        f'{len(data.test["tokens"])} validation windows', flush=True)
  def run_jax():
    r = train_jax(config, _STEPS.value, data)
    print(f'jax {jax.__version__} ({jax.device_count()} CPU devices): {r["tokens_per_s"]:.0f} '
          f'tokens/s, train {r["train_seconds"]:.1f} s (+ first step with compile '
          f'{r["first_step_seconds"]:.1f} s), val loss {r["val_loss"]:.4f}', flush=True)
    return r

  jax_runs = [run_jax()]
  torch_runs = []
  for threads in _TORCH_THREADS.value:
    r = train_torch(config, data, _STEPS.value, threads)
    print(f'torch {r["torch_version"]} ({r["num_threads"]} threads): {r["tokens_per_s"]:.0f} '
          f'tokens/s, train {r["train_seconds"]:.1f} s, val loss {r["val_loss"]:.4f}',
          flush=True)
    torch_runs.append(r)
  jax_runs.append(run_jax())
  best_jax = max(jax_runs, key=lambda r: r['tokens_per_s'])
  best_torch = max(torch_runs, key=lambda r: r['tokens_per_s'])
  print(f'best of each: jax {best_jax["tokens_per_s"]:.0f} tokens/s ({best_jax["train_seconds"]:.1f} s), '
        f'torch {best_torch["tokens_per_s"]:.0f} tokens/s ({best_torch["train_seconds"]:.1f} s); '
        f'tokens/s ratio jax / torch: {best_jax["tokens_per_s"] / best_torch["tokens_per_s"]:.2f}',
        flush=True)


def part_flops(peak: float) -> None:
  config = shakespeare_char.get_config()
  config.model.attention = _ATTENTION.value
  mesh, data, task, source, state, step = bench_steps.setup(config)
  with pipeline.Prefetcher(source, parallel.batch_sharding(mesh)) as batches:
    first = next(batches)
    compiled, compile_s, flops = bench_steps.compile_step(step, state, first)
    state, _ = jax.block_until_ready(compiled(state, first))
    # Each step timed alone; the fastest is compared with the peak, which is also a best
    # time: a slow spell of the machine (tens of percent here) then skews neither.
    times = []
    for _ in range(_FLOPS_STEPS.value):
      state, seconds = bench_steps.run_steps(compiled, state, batches, 1)
      times.append(seconds)
    per_step, mean = min(times), sum(times) / len(times)
  m, b, t = config.model, config.data.batch_size, config.data.block_size
  n = 12 * m.num_layers * m.width ** 2  # matmul weights in the blocks
  analytic = 6 * b * t * (n + m.width * data.tokenizer.vocab_size) \
      + 12 * m.num_layers * b * t * t * m.width  # + attention scores and mixing, fwd + bwd
  print(f'## Default size train step (batch {b} x context {t}, {m.num_layers} layers, '
        f'width {m.width}): compile {compile_s:.1f} s, {per_step:.2f} s/step (best of '
        f'{len(times)}; mean {mean:.2f} s), {b * t / per_step:.0f} tokens/s', flush=True)
  print(f'XLA FLOPs/step {flops / 1e9:.1f} G (6ND + attention estimate {analytic / 1e9:.1f} G); '
        f'{flops / per_step / 1e9:.1f} GFLOP/s = {100 * flops / per_step / peak:.1f}% of the '
        f'{peak / 1e9:.1f} GFLOP/s matmul peak', flush=True)


def part_generation() -> None:
  print(f'## Generation of {_NEW_TOKENS.value} tokens, batch 1', flush=True)
  for size in ('cpu', 'default'):
    config = shakespeare_char.get_config(size)
    config.model.attention = _ATTENTION.value
    data = datasets.load(config.data)
    task = tasks.build(config, data.spec)
    variables = task.model.init(jax.random.PRNGKey(0), np.zeros((1, 8), np.int32))
    prompt = np.asarray(data.tokenizer.encode('\n' * 8), np.int32)[None]
    runs = {name: functools.partial(fn, task.model, variables, prompt, jax.random.PRNGKey(1),
                                    max_new_tokens=_NEW_TOKENS.value, temperature=0.8, top_k=200)
            for name, fn in (('cached', decoding.generate_jit),
                             ('uncached', decoding.generate_uncached_jit))}
    for run in runs.values():
      jax.block_until_ready(run())  # compile
    # Interleaved, best of each: a slow spell of the machine then hits both sides.
    times = {name: float('inf') for name in runs}
    for _ in range(_GEN_REPEATS.value):
      for name, run in runs.items():
        start = time.perf_counter()
        jax.block_until_ready(run())
        times[name] = min(times[name], time.perf_counter() - start)
    print(f'{size}: cached {_NEW_TOKENS.value / times["cached"]:.0f} tokens/s, uncached '
          f'{_NEW_TOKENS.value / times["uncached"]:.0f} tokens/s: '
          f'{times["uncached"] / times["cached"]:.1f}x faster with the cache (best of '
          f'{_GEN_REPEATS.value} interleaved runs each)', flush=True)


def main(argv):
  del argv
  print(f'devices: {jax.device_count()} x {jax.devices()[0].device_kind}, jax {jax.__version__}, '
        f'python {sys.version.split()[0]}', flush=True)
  if 'torch' in _PARTS.value:
    part_torch()
  if 'flops' in _PARTS.value:
    peak = matmul_peak()
    print(f'measured float32 matmul peak: {peak / 1e9:.1f} GFLOP/s', flush=True)
    part_flops(peak)
  if 'generation' in _PARTS.value:
    part_generation()


if __name__ == '__main__':
  app.run(main)
