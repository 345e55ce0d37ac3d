r"""Language-model benchmark: FLOP/s against this machine's peak, and cached decoding.

  python -m bench.lm                                   # both parts
  python -m bench.lm --parts=generation --out=lm.json  # also writes the rows as JSON
  python -m bench.results --only=lm                    # both, kept as a record

Parts (every figure from this one run on this machine):
  flops       the default size (6 layers, 384 wide, context 256, batch 64): XLA's FLOP
              count of the compiled train step over the time of each of `--flops_steps`
              steps (after 3 untimed ones), against the float32 matmul peak
              (`bench.peak.matmul_peak`, a best time) measured just before that step;
              the median of those shares.
              `--host_malloc=keep` times it with freed memory kept (genjax.run.host_memory).
  generation  500 new tokens with the key/value cache vs nanoGPT's recompute-the-context
              loop (`generate_uncached`), batch 1, both compiled; tokens/s and the speed-up,
              the best of `--generation_repeats` interleaved runs of each.
JAX against PyTorch is `bench.frameworks`.
"""

from __future__ import annotations

import functools
import json
import sys
import time

import flax.linen as nn
import jax
import numpy as np
from absl import app, flags

from bench import steps as bench_steps
from bench.peak import matmul_peak
from experiments import shakespeare_char
from launch import common
from genjax import tasks
from genjax.data import datasets, pipeline
from genjax.models import decoding
from genjax.run import host_memory, restore
from genjax.step import parallel

_PARTS = flags.DEFINE_list('parts', ['flops', 'generation'], 'Which parts to run.')
_FLOPS_STEPS = flags.DEFINE_integer(
  'flops_steps', 5, 'flops part: steps timed one by one (after 3), each after a peak.'
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
_HOST_MALLOC = flags.DEFINE_enum(
  'host_malloc',
  'system',
  list(host_memory.MODES),
  "'keep': glibc keeps freed memory for reuse (genjax.run.host_memory), set before JAX "
  "starts; 'system': malloc as it is.",
)
_WARMUP_STEPS = 3  # flops part: steps run before the timed ones (the first compiles)
_PART_TITLES = {'flops': 'train-step FLOP/s', 'generation': 'cached decoding'}
_OUT = flags.DEFINE_string('out', None, 'Also write the figures here as JSON (a table).')


def part_flops() -> list[list[str]]:
  config = shakespeare_char.get_config()
  config.model.attention = _ATTENTION.value
  mesh, data, task, source, state, step = bench_steps.setup(config)
  with pipeline.Prefetcher(source, parallel.batch_sharding(mesh)) as batches:
    first = next(batches)
    compiled, compile_s, flops = bench_steps.compile_step(step, state, first)
    state, _ = jax.block_until_ready(compiled(state, first))
    # Untimed, as the compile: with freed host memory kept (--host_malloc=keep) the heap
    # still grows over the first steps (1-2 s of page faults each), which a long run
    # pays once.
    state, _ = bench_steps.run_steps(compiled, state, batches, _WARMUP_STEPS - 1)
    # Each step is timed alone, right after its own peak measurement: this machine's
    # speed drifts by tens of percent within minutes, so a peak measured once, before
    # every step, can land in a fast spell while the steps land in a slow one and move
    # the ratio by several points. Each pair shares its spell; their median is reported.
    times, peaks = [], []
    for _ in range(_FLOPS_STEPS.value):
      peaks.append(matmul_peak(sizes=(1024, 2048), repeats=3))
      state, seconds = bench_steps.run_steps(compiled, state, batches, 1)
      times.append(seconds)
  shares = sorted(flops / t / p for t, p in zip(times, peaks))
  share = float(np.median(shares))
  per_step, mean = min(times), sum(times) / len(times)
  m, b, t = config.model, config.data.batch_size, config.data.block_size
  n = 12 * m.num_layers * m.width**2  # matmul weights in the blocks
  analytic = (
    6 * b * t * (n + m.width * data.extras['tokenizer'].vocab_size)
    + 12 * m.num_layers * b * t * t * m.width
  )  # + attention scores and mixing, fwd + bwd
  rows = [
    [
      f'default-size train step (batch {b} x context {t}, {m.num_layers} layers, width '
      f'{m.width}), {jax.device_count()} devices',
      f'{per_step:.2f} s/step (best of {len(times)}; mean {mean:.2f} s), '
      f'{b * t / per_step:.0f} tokens/s, compile {compile_s:.1f} s',
    ],
    [
      'its FLOP/s against the float32 matmul peak measured just before each step',
      f'XLA FLOPs/step {flops / 1e9:.1f} G (6ND + attention estimate {analytic / 1e9:.1f} G); '
      f'median of {len(shares)} step/peak pairs **{100 * share:.1f}%** (range '
      f'{100 * shares[0]:.1f}-{100 * shares[-1]:.1f}%; peaks {min(peaks) / 1e9:.1f}-'
      f'{max(peaks) / 1e9:.1f} GFLOP/s; best step {flops / per_step / 1e9:.1f} GFLOP/s)',
    ],
  ]
  for row in rows:
    print(': '.join(row), flush=True)
  return rows


def part_generation() -> list[list[str]]:
  rows = []
  for size in _GEN_SIZES.value:
    config = shakespeare_char.get_config(size)
    config.model.attention = _ATTENTION.value
    data = datasets.load(config.data)
    task = tasks.build(config, data.spec, restore.RUNS)
    variables = nn.unbox(task.model.init(jax.random.PRNGKey(0), np.zeros((1, 8), np.int32)))
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
    rows.append(
      [
        f'generation of {_NEW_TOKENS.value} tokens, batch 1, `shakespeare_char:{size}` '
        f'(context {config.data.block_size}), cached vs recomputing the context',
        f'{_NEW_TOKENS.value / times["cached"]:.0f} vs '
        f'{_NEW_TOKENS.value / times["uncached"]:.0f} tokens/s: '
        f'**{times["uncached"] / times["cached"]:.1f}x** (best of {_GEN_REPEATS.value} '
        'interleaved runs each)',
      ]
    )
    print(': '.join(rows[-1]), flush=True)
  return rows


def main(argv):
  del argv
  # One XLA device per core, before JAX's backend starts (the first device query below):
  # the data-parallel step then keeps every core busy. Other XLA flags set by hand keep
  # that count; XLA_FLAGS=--xla_force_host_platform_device_count=N overrides it.
  said = common.cpu_devices_per_core(None)
  if said:
    print(said, flush=True)
  print(
    f'host malloc: {host_memory.apply(_HOST_MALLOC.value) or "as the system has it"}', flush=True
  )
  print(
    f'devices: {jax.device_count()} x {jax.devices()[0].device_kind}, jax {jax.__version__}, '
    f'python {sys.version.split()[0]}',
    flush=True,
  )
  rows = []
  if 'flops' in _PARTS.value:
    rows += part_flops()
  if 'generation' in _PARTS.value:
    rows += part_generation()
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(
        {
          'title': 'Language models: '
          + ', '.join(_PART_TITLES.get(p, p) for p in _PARTS.value)
          + (' (freed host memory kept)' if _HOST_MALLOC.value == 'keep' else ''),
          'columns': ['what', 'measured'],
          'rows': rows,
        },
        f,
        indent=2,
      )


if __name__ == '__main__':
  app.run(main)
