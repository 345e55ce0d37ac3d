r"""Where an experiment's compiled train step spends its time: one profiled step, by XLA op.

  python -m bench.step_profile --config=experiments/shakespeare_char.py
  python -m bench.step_profile --config=experiments/mnist_diffusion.py --top=30

The step is built and compiled as `bench.steps` builds it (as `launch.main` runs it, on
as many CPU devices as `launch.main` would give it), run once to warm up, then `--steps`
calls run under `jax.profiler.trace`. The Perfetto trace it writes lists every XLA op (a
thunk: a fusion, a dot, a copy) as it ran on each device; the time of each is summed over
devices and calls. The report gives the ops' kinds (XLA names a fusion after its root ops,
e.g. `multiply_add_fusion`; on CPU `ynn_fusion` and `dot` are the matrix multiplications),
the top ops, and how much of the cores' time they fill. `--trace_dir` keeps the trace for
TensorBoard or Perfetto.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re
import tempfile

import jax
from absl import app, flags
from ml_collections import config_flags

from bench import steps as bench_steps
from launch import common

# Trace events that are not XLA ops: the runtime's own spans (its waits for devices and
# threads included) and Python frames ('$...').
_NOT_OPS = re.compile(r'^\$|::|Execute|PjitFunction|^Thunk|^Wait|^Rendezvous')


def op_times(trace_events: list[dict]) -> dict[str, float]:
  """{op name: seconds summed over its runs} from Perfetto trace events."""
  times = collections.Counter()
  for event in trace_events:
    if event.get('ph') == 'X' and 'dur' in event and not _NOT_OPS.search(event['name']):
      times[event['name']] += event['dur'] / 1e6
  return dict(times)


def kind(op: str) -> str:
  """An op's kind: its name without XLA's instance number ('multiply_add_fusion.12')."""
  return re.sub(r'\.\d+$', '', op)


def by_kind(times: dict[str, float]) -> list[tuple[str, float, int]]:
  """[(kind, seconds, ops)], the slowest first."""
  seconds, count = collections.Counter(), collections.Counter()
  for op, s in times.items():
    seconds[kind(op)] += s
    count[kind(op)] += 1
  return [(k, s, count[k]) for k, s in seconds.most_common()]


def read_trace(trace_dir: str) -> list[dict]:
  paths = glob.glob(os.path.join(trace_dir, '**', '*.trace.json.gz'), recursive=True)
  if not paths:
    raise RuntimeError(f'jax.profiler wrote no Perfetto trace under {trace_dir}.')
  with gzip.open(max(paths, key=os.path.getmtime)) as f:
    events = json.load(f)
  return events['traceEvents'] if isinstance(events, dict) else events


def profile(config, steps: int = 1, trace_dir: str | None = None) -> dict:
  """{'seconds': wall seconds of the profiled calls, 'ops': {op: seconds}} of `config`'s
  step (its data loaded, its state initialised)."""
  mesh, _, _, source, state, step = bench_steps.setup(config)
  per_call = config.train.steps_per_call
  with bench_steps.prefetcher(source, mesh, config, (2 + steps) * per_call) as batches:
    compiled, _, _ = bench_steps.compile_step(step, state, next(batches))  # one call's worth
    state, _ = bench_steps.run_steps(compiled, state, batches, 1)  # warm-up (allocations)
    with tempfile.TemporaryDirectory() as scratch:
      out = trace_dir or scratch
      with jax.profiler.trace(out, create_perfetto_trace=True):
        state, seconds = bench_steps.run_steps(compiled, state, batches, steps)
      events = read_trace(out)
  return {'seconds': seconds, 'ops': op_times(events)}


def report(result: dict, top: int = 20) -> list[str]:
  ops, wall = result['ops'], result['seconds']
  total = sum(ops.values())
  on_cpu = jax.default_backend() == 'cpu'
  cores = os.cpu_count() if on_cpu else jax.device_count()
  lines = [
    f'{wall:.3f} s wall for the profiled calls; the ops ran {total:.3f} s in all, '
    f'{100 * total / (wall * cores):.1f}% of {cores} '
    f"{'cores' if on_cpu else 'devices'} x the wall time",
    '',
    '| op kind | seconds | share of op time | ops |',
    '|---|---|---|---|',
  ]
  for k, s, n in by_kind(ops)[:top]:
    lines.append(f'| `{k}` | {s:.3f} | {100 * s / total:.1f}% | {n} |')
  lines += ['', '| op | seconds | share of op time |', '|---|---|---|']
  for op, s in sorted(ops.items(), key=lambda item: -item[1])[:top]:
    lines.append(f'| `{op}` | {s:.3f} | {100 * s / total:.1f}% |')
  return lines


def main(argv):
  del argv
  args = flags.FLAGS
  if args.config is None:
    raise app.UsageError('Name the experiment: --config=experiments/NAME.py[:size].')
  # The devices launch.main would give this experiment (one per core unless the config or
  # XLA_FLAGS names a count), before JAX's backend starts: the profile is then of the step
  # a run takes, not of XLA's one-device default.
  said = common.cpu_devices_per_core(
    args.config.data.batch_size, 1, args.config.parallel.get('cpu_devices', 0)
  )
  if said:
    print(said, flush=True)
  result = profile(args.config, args.steps, args.trace_dir)
  print('\n'.join(report(result, args.top)), flush=True)


if __name__ == '__main__':
  # Defined only when run, so that tests can import this module beside other bench
  # modules whose flags share these names (--steps, --config) in one process.
  config_flags.DEFINE_config_file('config', None, 'Experiment config to profile.')
  flags.DEFINE_integer('steps', 1, 'Calls of the step profiled (after one warm-up).')
  flags.DEFINE_integer('top', 20, 'Ops listed one by one, the slowest first.')
  flags.DEFINE_string('trace_dir', None, 'Keep the trace here (default: discarded).')
  app.run(main)
