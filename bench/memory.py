r"""Per-device memory of the train state: 'jit' (the whole state on every device) against
'fsdp' (each large array split over the devices), on 1, 2 and 4 devices.

  python -m bench.memory                                  # shakespeare_char, default size
  python -m bench.memory --experiment=mnist_diffusion --out=memory.json

Two figures for each layout, both for one device:
  * state: the bytes of its shards of the parameters, the optimizer state and the EMA,
    laid out as `launch.main` lays them out (`genjax.step.sharding`);
  * step: XLA's memory analysis of the compiled train step (arguments, outputs not
    aliased to them, and temporaries), the whole program one device runs.
Nothing is trained: the state is abstract (shapes only) and the step is compiled, not run.
On a CPU it runs on 4 XLA devices (set before JAX starts, unless XLA_FLAGS sets a count).
"""

from __future__ import annotations

import importlib
import json
import os

from absl import app, flags

from launch import common

_EXPERIMENT = flags.DEFINE_string('experiment', 'shakespeare_char', 'A module in experiments/.')
_DEVICE_COUNTS = flags.DEFINE_list('device_counts', ['1', '2', '4'], 'Mesh sizes to lay out.')
_OUT = flags.DEFINE_string('out', None, 'Also write the table here as JSON.')

MiB = 2**20


def layout_figures(config, data, devices: int, strategy: str) -> dict[str, float]:
  """{'state_mib', 'step_mib'} on one device of a `devices`-device mesh under `strategy`."""
  import jax  # pylint: disable=import-outside-toplevel

  from genjax import tasks  # pylint: disable=import-outside-toplevel
  from genjax.run import loop, restore  # pylint: disable=import-outside-toplevel
  from genjax.step import parallel, sharding, train_step  # pylint: disable=import-outside-toplevel

  config = config.copy_and_resolve_references()
  config.parallel.strategy = strategy
  mesh = parallel.make_mesh(jax.devices()[:devices])
  task = tasks.build(config, data.spec, restore.RUNS)
  tx = task.make_optimizer(config)
  source = data.train_source(config.data.batch_size, config.seed)
  shapes = jax.eval_shape(
    lambda rng, example: train_step.initial_state(task, config, tx, rng, example),
    jax.random.PRNGKey(0),
    source.example(),
  )
  layout = loop.state_layout(task, config, tx, source.example(), mesh)
  state = jax.tree.map(
    lambda s, where: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=where), shapes, layout
  )
  batch_sharding = parallel.batch_sharding(mesh)
  batch = {
    k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=batch_sharding)
    for k, v in source.batch(0).items()
  }
  step = parallel.compile_step(
    train_step.train_step(task, config, tx), mesh, strategy, state_sharding=layout
  )
  memory = step.lower(state, batch).compile().memory_analysis()
  step_bytes = (
    memory.argument_size_in_bytes
    + memory.output_size_in_bytes
    - memory.alias_size_in_bytes
    + memory.temp_size_in_bytes
  )
  return {'state_mib': sharding.bytes_per_device(state) / MiB, 'step_mib': step_bytes / MiB}


def main(argv):
  del argv
  counts = [int(n) for n in _DEVICE_COUNTS.value]
  said = common.cpu_devices_per_core(None, wanted=max(counts))  # before JAX starts
  import jax  # pylint: disable=import-outside-toplevel

  from genjax.data import datasets  # pylint: disable=import-outside-toplevel

  if said:
    print(said, flush=True)
  if jax.device_count() < max(counts):
    raise app.UsageError(f'{jax.device_count()} devices; --device_counts asks for {max(counts)}.')
  config = importlib.import_module(f'experiments.{_EXPERIMENT.value}').get_config()
  data = datasets.load(config.data)
  rows, figures = [], {}
  for n in counts:
    at = {s: layout_figures(config, data, n, s) for s in ('jit', 'fsdp')}
    figures[n] = at
    share = at['fsdp']['state_mib'] / at['jit']['state_mib']
    rows.append(
      [
        str(n),
        f"{at['jit']['state_mib']:.1f}",
        f"{at['fsdp']['state_mib']:.1f}",
        f'**{100 * share:.1f}%**',
        f"{at['jit']['step_mib']:.1f}",
        f"{at['fsdp']['step_mib']:.1f}",
      ]
    )
    print(' | '.join(rows[-1]), flush=True)
  columns = [
    'devices',
    "state MiB a device, 'jit'",
    "state MiB a device, 'fsdp'",
    "'fsdp' / 'jit'",
    "compiled step MiB a device, 'jit'",
    "compiled step MiB a device, 'fsdp'",
  ]
  if _OUT.value:
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    with open(_OUT.value, 'w') as f:
      json.dump(
        {
          'title': f"Train-state memory a device, 'jit' against 'fsdp': {_EXPERIMENT.value}",
          'summary': (
            f"parallel.fsdp_min_size={config.parallel.fsdp_min_size}: smaller arrays stay "
            f'whole on every device; {jax.devices()[0].device_kind} devices.'
          ),
          'columns': columns,
          'rows': rows,
          'figures': figures,
        },
        f,
        indent=2,
      )


if __name__ == '__main__':
  app.run(main)
