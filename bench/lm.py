r"""Language-model benchmark: JAX vs PyTorch, FLOP/s vs this machine's peak, cached decoding.

  python -m bench.lm                                   # all three parts
  python -m bench.lm --parts=torch --torch_python=/work/torchvenv/bin/python
  python -m bench.lm --parts=flops,generation

Parts (every figure from this one run on this machine):
  torch       nanoGPT's CPU shakespeare_char model (4 layers, 128 wide, context 64, batch
              12) trained `--steps` steps by our compiled step and by the PyTorch
              reference `bench/torch_gpt.py`, on exactly the same tokens, batch positions
              and validation windows (handed over in an .npz). PyTorch runs in its own
              interpreter (`--torch_python`: a venv with torch==2.13.0; see torch_gpt.py),
              one per `--torch_threads` value, stepping on command. The frameworks take
              turns of `--chunk_steps` steps: this machine's speed drifts by tens of
              percent over minutes, and whole runs one after the other measured that
              drift as much as the frameworks (ratios from 0.72 to 0.97 for the same
              code). Reports tokens/s of each over its whole run, the ratio of the totals,
              the median per-turn ratio, and validation loss.
  flops       the default size (6 layers, 384 wide, context 256, batch 64): XLA's FLOP
              count of the compiled train step over its best time of `--flops_steps`,
              against the float32 matmul peak measured first (`bench.peak.matmul_peak`,
              also a best time).
  generation  500 new tokens with the key/value cache vs nanoGPT's recompute-the-context
              loop (`generate_uncached`), batch 1, both compiled; tokens/s and the speed-up,
              the best of `--generation_repeats` interleaved runs of each.
"""

from __future__ import annotations

import contextlib
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
from genjax.run import restore
from genjax.step import parallel

_PARTS = flags.DEFINE_list('parts', ['torch', 'flops', 'generation'], 'Which parts to run.')
_STEPS = flags.DEFINE_integer('steps', 2000, 'torch part: training steps of each framework.')
_TORCH_PYTHON = flags.DEFINE_string(
  'torch_python', '/work/torchvenv/bin/python', 'An interpreter with torch==2.13.0 installed.'
)
_TORCH_THREADS = flags.DEFINE_list(
  'torch_threads', ['2', '1'], 'torch.set_num_threads values to try; the best is compared.'
)
_CHUNK_STEPS = flags.DEFINE_integer('chunk_steps', 100, 'torch part: steps per turn.')
_FLOPS_STEPS = flags.DEFINE_integer(
  'flops_steps', 5, 'flops part: steps timed one by one (after one); the best is reported.'
)
_NEW_TOKENS = flags.DEFINE_integer('new_tokens', 500, 'generation part: tokens to generate.')
_GEN_REPEATS = flags.DEFINE_integer(
  'generation_repeats', 3, 'generation part: timed runs of each, interleaved.'
)
_GEN_SIZES = flags.DEFINE_list(
  'generation_sizes',
  ['cpu', 'default'],
  'generation part: shakespeare_char config sizes to measure.',
)
_ATTENTION = flags.DEFINE_string(
  'attention', 'auto', "model.attention for every part: 'auto' | 'xla' | 'einsum' | 'cudnn'."
)

TORCH_SCRIPT = os.path.join(os.path.dirname(__file__), 'torch_gpt.py')


def _torch_inputs(config, data, steps: int, path: str) -> None:
  """The exact tokens, batch starts and validation windows of the JAX run, for PyTorch."""
  source = data.train_source(config.data.batch_size, config.seed)
  starts = np.stack([source.starts(s) for s in range(steps)])
  first = source.batch(0)['tokens']
  block = config.data.block_size
  train_tokens = data.extras['train_tokens']
  assert np.array_equal(first[0], train_tokens[starts[0, 0] : starts[0, 0] + block + 1])
  np.savez(
    path,
    train_tokens=data.extras['train_tokens'].astype(np.int64),
    starts=starts,
    val_windows=data.test['tokens'].astype(np.int64),
    vocab_size=np.int64(data.extras['tokenizer'].vocab_size),
  )


class TorchTrainer:
  """bench/torch_gpt.py --serve in its own interpreter, stepping on command."""

  def __init__(self, config, npz: str, steps: int, threads: str, log: str):
    m = config.model
    self.command = [
      _TORCH_PYTHON.value,
      TORCH_SCRIPT,
      '--serve',
      f'--tokens_npz={npz}',
      f'--steps={steps}',
      f'--n_layer={m.num_layers}',
      f'--n_head={m.num_heads}',
      f'--n_embd={m.width}',
      f'--dropout={m.dropout}',
      f'--lr={config.optim.learning_rate}',
      f'--min_lr={config.optim.learning_rate * config.optim.end_learning_rate_factor}',
      f'--warmup_iters={config.optim.warmup_steps}',
      f'--beta2={config.optim.b2}',
      f'--threads={threads}',
    ]
    # stderr to a file: a pipe nobody reads would block the process once full.
    self.log = log
    with open(log, 'w') as stderr:
      self.process = subprocess.Popen(
        self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True
      )
    self.info = self._answer()

  def _answer(self) -> dict:
    line = self.process.stdout.readline()
    if not line:
      with open(self.log) as stderr:
        raise RuntimeError(
          f'{" ".join(self.command)} exited with {self.process.wait()}:\n{stderr.read()[-3000:]}'
        )
    return json.loads(line)

  def ask(self, command: str) -> dict:
    self.process.stdin.write(command + '\n')
    self.process.stdin.flush()
    return self._answer()

  def close(self) -> None:
    if self.process.poll() is None:
      self.process.stdin.write('quit\n')
      self.process.stdin.close()
      self.process.wait()


def _quartiles(values):
  values = sorted(values)
  return tuple(values[round(q * (len(values) - 1))] for q in (0.25, 0.5, 0.75))


def part_torch() -> None:
  """JAX and PyTorch take turns of `--chunk_steps` steps each, on the same batches."""
  config = shakespeare_char.get_config('cpu')
  config.model.attention = _ATTENTION.value
  config.train.steps = steps = _STEPS.value
  chunk, per_call = _CHUNK_STEPS.value, config.train.steps_per_call
  if steps % per_call or chunk % per_call:
    raise app.UsageError(
      f'--steps={steps} and --chunk_steps={chunk} must be multiples of '
      f'the config\'s train.steps_per_call={per_call}'
    )
  mesh, data, task, source, state, step = bench_steps.setup(config)
  tokens_per_step = config.data.batch_size * config.data.block_size
  print(
    f'## JAX vs PyTorch: shakespeare_char:cpu, {steps} steps each in turns of {chunk}, '
    f'{len(data.test["tokens"])} validation windows',
    flush=True,
  )
  with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
    npz = os.path.join(tmp, 'tokens.npz')
    _torch_inputs(config, data, steps, npz)
    torches = {}
    for threads in _TORCH_THREADS.value:
      trainer = TorchTrainer(
        config, npz, steps, threads, os.path.join(tmp, f'torch_{threads}_threads.log')
      )
      stack.callback(trainer.close)
      info = trainer.info
      torches[f'torch {info["torch_version"]}, {info["num_threads"]} threads'] = trainer
    batches = stack.enter_context(bench_steps.prefetcher(source, mesh, config, steps))
    # The first call of each is not timed: compilation, allocation, lazy initialisation.
    state, first_call_s = bench_steps.run_steps(step, state, batches, 1)
    for trainer in torches.values():
      trainer.ask(f'steps {per_call}')
    jax_name = (
      f'jax {jax.__version__}, {jax.device_count()} devices, {per_call} '
      f'step{"s" if per_call > 1 else ""} per call'
    )
    seconds = {name: [] for name in [jax_name, *torches]}
    done = per_call
    while done < steps:
      n = min(chunk, steps - done)
      state, jax_s = bench_steps.run_steps(step, state, batches, n // per_call)
      seconds[jax_name].append(jax_s)
      for name, trainer in torches.items():
        seconds[name].append(trainer.ask(f'steps {n}')['seconds'])
      done += n
    val_loss = {jax_name: task.evaluate(state.params, data, jax.random.PRNGKey(0))['loss']}
    for name, trainer in torches.items():
      val_loss[name] = trainer.ask('evaluate')['val_loss']
  timed = steps - per_call
  for name, times in seconds.items():
    total = sum(times)
    print(
      f'{name}: {timed * tokens_per_step / total:.0f} tokens/s, {total:.1f} s of '
      f'steps {per_call + 1}..{steps}, val loss {val_loss[name]:.4f}'
      + (f' (first call with compile {first_call_s:.1f} s)' if name == jax_name else ''),
      flush=True,
    )
  best = min(torches, key=lambda name: sum(seconds[name]))
  ratio = sum(seconds[best]) / sum(seconds[jax_name])
  low, median, high = _quartiles([t / j for t, j in zip(seconds[best], seconds[jax_name])])
  print(
    f'tokens/s ratio jax / {best}: {ratio:.3f} over the whole run; per turn of {chunk} '
    f'steps: median {median:.3f} (quartiles {low:.3f}-{high:.3f}, {len(seconds[best])} '
    f'turns)',
    flush=True,
  )


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
  n = 12 * m.num_layers * m.width**2  # matmul weights in the blocks
  analytic = (
    6 * b * t * (n + m.width * data.extras['tokenizer'].vocab_size)
    + 12 * m.num_layers * b * t * t * m.width
  )  # + attention scores and mixing, fwd + bwd
  print(
    f'## Default size train step (batch {b} x context {t}, {m.num_layers} layers, '
    f'width {m.width}): compile {compile_s:.1f} s, {per_step:.2f} s/step (best of '
    f'{len(times)}; mean {mean:.2f} s), {b * t / per_step:.0f} tokens/s',
    flush=True,
  )
  print(
    f'XLA FLOPs/step {flops / 1e9:.1f} G (6ND + attention estimate {analytic / 1e9:.1f} G); '
    f'{flops / per_step / 1e9:.1f} GFLOP/s = {100 * flops / per_step / peak:.1f}% of the '
    f'{peak / 1e9:.1f} GFLOP/s matmul peak',
    flush=True,
  )


def part_generation() -> None:
  print(f'## Generation of {_NEW_TOKENS.value} tokens, batch 1', flush=True)
  for size in _GEN_SIZES.value:
    config = shakespeare_char.get_config(size)
    config.model.attention = _ATTENTION.value
    data = datasets.load(config.data)
    task = tasks.build(config, data.spec, restore.RUNS)
    variables = task.model.init(jax.random.PRNGKey(0), np.zeros((1, 8), np.int32))
    prompt = np.asarray(data.extras['tokenizer'].encode('\n' * 8), np.int32)[None]
    decoder = decoding.LMDecoder(task.model)
    runs = {
      name: functools.partial(
        fn,
        decoder,
        variables,
        prompt,
        jax.random.PRNGKey(1),
        max_new_tokens=_NEW_TOKENS.value,
        temperature=0.8,
        top_k=200,
      )
      for name, fn in (
        ('cached', decoding.generate_jit),
        ('uncached', decoding.generate_uncached_jit),
      )
    }
    for run in runs.values():
      jax.block_until_ready(run())  # compile
    # Interleaved, best of each: a slow spell of the machine then hits both sides.
    times = {name: float('inf') for name in runs}
    for _ in range(_GEN_REPEATS.value):
      for name, run in runs.items():
        start = time.perf_counter()
        jax.block_until_ready(run())
        times[name] = min(times[name], time.perf_counter() - start)
    print(
      f'{size}: cached {_NEW_TOKENS.value / times["cached"]:.0f} tokens/s, uncached '
      f'{_NEW_TOKENS.value / times["uncached"]:.0f} tokens/s: '
      f'{times["uncached"] / times["cached"]:.1f}x faster with the cache (best of '
      f'{_GEN_REPEATS.value} interleaved runs each)',
      flush=True,
    )


def main(argv):
  del argv
  print(
    f'devices: {jax.device_count()} x {jax.devices()[0].device_kind}, jax {jax.__version__}, '
    f'python {sys.version.split()[0]}',
    flush=True,
  )
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
