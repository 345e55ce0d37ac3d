"""Data-parallel execution of a pure step over every device: 'jit', 'pmap' or 'fsdp'.

A step is written once, as `step_fn(state, batch, *, axis_name)`:
  * under 'jit' it sees the global batch and `axis_name=None`; XLA partitions it over
    the mesh from the input shardings (batch on 'data', state replicated);
  * under 'pmap' it sees its device's slice of the batch and `axis_name='data'`, and
    reduces gradients and metrics itself with `lax.pmean`. It runs under `jax.shard_map`,
    which is what `jax.pmap` is built on since JAX 0.8: the state stays one global array,
    not a stack of per-device copies, so checkpoints and the loop are the same for both.
  * under 'fsdp' it is the 'jit' program with the state split over the devices
    (genjax.step.sharding): each holds a slice of every large weight and its optimizer
    state, and XLA gathers the weights for the step.
All give the same numbers as one device for the same global batch.

`compile_step(..., multi_step=True)` runs several steps per call: the batches come
stacked on a new leading axis and a `lax.scan` carries the state through them, so the
host dispatches (and the devices synchronise with it) once per call, not once per step.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from genjax.config import ConfigError

AXIS = 'data'
StepFn = Callable[..., tuple[Any, dict]]


MESH_AXES = (AXIS, 'model')  # 'model': tensor parallelism (genjax.step.sharding)


def make_mesh(devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (AXIS,))


def parse_mesh(text: str) -> dict[str, int]:
  """'data:2,model:2' -> {'data': 2, 'model': 2}; '' -> {} (every device on 'data')."""
  sizes = {}
  for part in filter(None, (p.strip() for p in text.split(','))):
    name, _, size = part.partition(':')
    if name not in MESH_AXES or name in sizes or not size.strip().isdigit() or int(size) < 1:
      raise ConfigError(
        f"config.parallel.mesh={text!r}: give AXIS:SIZE pairs, each axis one of {MESH_AXES} "
        "at most once with a size >= 1, e.g. --config.parallel.mesh='data:2,model:2' "
        "('' puts every device on 'data')."
      )
    sizes[name] = int(size)
  return sizes


def mesh_of(text: str, devices=None) -> Mesh:
  """The mesh `config.parallel.mesh` names, on the first data x model of `devices`
  (default all); 'data' alone when `text` is '', and 'data' defaults to the devices the
  'model' axis leaves."""
  devices = list(jax.devices() if devices is None else devices)
  sizes = parse_mesh(text)
  if not sizes:
    return make_mesh(devices)
  model = sizes.get('model', 1)
  data = sizes.get(AXIS, len(devices) // model)
  if data < 1 or data * model > len(devices):
    raise ConfigError(
      f'config.parallel.mesh={text!r} asks for {max(data, 1) * model} devices; this run has '
      f'{len(devices)}. Pass sizes whose product is at most {len(devices)}.'
    )
  if jax.process_count() > 1 and data * model != len(devices):
    raise ConfigError(
      f'config.parallel.mesh={text!r} uses {data * model} of the {len(devices)} devices: a '
      'multi-process run needs every process in the mesh; give sizes whose product is '
      f'{len(devices)}.'
    )
  used = np.asarray(devices[: data * model]).reshape(data, model)
  if 'model' not in sizes:
    return Mesh(used.reshape(data), (AXIS,))
  return Mesh(used, MESH_AXES)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(AXIS))


def stacked_batch_sharding(mesh: Mesh) -> NamedSharding:
  """Batches stacked [steps, global_batch, ...]: each step's batch split over the mesh."""
  return NamedSharding(mesh, P(None, AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def spread_batch(x: jax.Array) -> jax.Array:
  """Inside a jitted function: x [B, ...] split along B over this process's devices, so a
  large batch outside the training step (sampling, scoring samples) keeps every device
  (every core, on a CPU with one XLA device per core) busy. Rows are independent there,
  so the numbers are those of one device. Unchanged on one device or when B does not
  divide."""
  devices = jax.local_devices()
  if len(devices) < 2 or not x.ndim or x.shape[0] % len(devices):
    return x
  return jax.lax.with_sharding_constraint(x, batch_sharding(make_mesh(devices)))


def replicate_locally(tree: Any) -> Any:
  """A pytree copied onto each of this process's devices: the weights a `spread_batch`
  computation reads, whichever device (or mesh) they were restored onto."""
  devices = jax.local_devices()
  if len(devices) < 2:
    return tree
  return jax.device_put(tree, replicated(make_mesh(devices)))


def check_batch_size(global_batch: int, mesh: Mesh, name: str = 'data.batch_size') -> int:
  """The per-process batch; a global batch that does not split evenly is an error."""
  n = mesh.shape[AXIS]  # a 'model' axis holds the same examples on each of its devices
  if global_batch % n:
    raise ConfigError(
      f"config.{name}={global_batch} is not divisible by the {n} devices of the mesh's "
      f'data axis; '
      f'pass --config.{name}={max(n, global_batch // n * n)} (or another multiple of {n}).'
    )
  return global_batch // jax.process_count()


def compile_step(
  step_fn: StepFn,
  mesh: Mesh,
  strategy: str,
  donate: bool = True,
  multi_step: bool = False,
  state_sharding: Any = None,
) -> Callable:
  """Returns `step(state, batch) -> (state, metrics)`, jitted once for the mesh.

  `state_sharding`: where the state's arrays live (`genjax.step.sharding.state_sharding`;
  the state's own `.sharding`s); the state comes back laid out the same. Default: whole
  on every device, as 'jit' and 'pmap' keep it; 'fsdp' needs it.

  With `multi_step`, `step(state, batches)` takes batches stacked on a leading axis (see
  `stacked_batch_sharding`), runs one step per entry, and returns the metrics stacked
  the same way. It compiles once per number of steps.
  """
  donate_argnums = (0,) if donate else ()

  def program(axis_name: str | None) -> Callable:
    one = lambda state, batch: step_fn(state, batch, axis_name=axis_name)
    if strategy == 'fsdp':
      one = _gathering(step_fn, state_sharding)
    if not multi_step:
      return one
    return lambda state, batches: jax.lax.scan(one, state, batches)

  batches = stacked_batch_sharding(mesh) if multi_step else batch_sharding(mesh)
  if strategy == 'fsdp' and state_sharding is None:
    raise ValueError("strategy='fsdp' needs the state's shardings (sharding.state_sharding).")
  if strategy in ('jit', 'fsdp'):
    # One program for both: the state's shardings alone decide whether each device holds
    # whole weights or a slice, and XLA adds the gathers and reduce-scatters.
    state_sharding = replicated(mesh) if state_sharding is None else state_sharding
    return jax.jit(
      program(None),
      in_shardings=(state_sharding, batches),
      out_shardings=(state_sharding, replicated(mesh)),
      donate_argnums=donate_argnums,
    )
  if strategy == 'pmap' and 'model' in mesh.axis_names:
    raise ConfigError(
      "config.parallel.strategy='pmap' runs one copy of the step per device and knows no "
      "'model' axis: pass --config.parallel.strategy=jit (or fsdp) with this mesh."
    )
  if strategy == 'pmap':
    # check_vma=False: with it on, JAX differentiates the replicated state as an
    # implicit broadcast and psums its gradient over devices inside grad; our own
    # pmean would then average the *sum*, giving device_count x the gradient
    # (invisible under Adam's scale invariance, wrong with clipping or SGD).
    per_device = jax.shard_map(
      program(AXIS), mesh=mesh, in_specs=(P(), batches.spec), out_specs=(P(), P()), check_vma=False
    )
    return jax.jit(per_device, donate_argnums=donate_argnums)
  raise ConfigError(f"config.parallel.strategy={strategy!r} is not one of ('jit', 'pmap', 'fsdp').")


def _gathering(step_fn: StepFn, state_sharding: Any) -> Callable:
  """'fsdp''s step: the parameters (and batch statistics) gathered whole over 'data'
  (their 'model' splits kept) for the step's computation, once, as ZeRO-3 does; the update
  and the state stay split. Left to itself, XLA may instead split the matmuls along the
  weights' sharded axes and move activations, which on a CPU took more memory than 'jit'
  (bench.memory)."""

  def whole_over_data(where: NamedSharding) -> NamedSharding:
    return NamedSharding(where.mesh, P(*(None if a == AXIS else a for a in where.spec)))

  def gather(tree, where):
    return jax.lax.with_sharding_constraint(tree, jax.tree.map(whole_over_data, where))

  def step(state, batch):
    # What the model reads: its parameters and its other collections (batch statistics);
    # not the EMA, which only follows the parameters element by element.
    extra = {
      k: v if k == 'ema' else gather(v, state_sharding.extra[k]) for k, v in state.extra.items()
    }
    params = gather(state.params, state_sharding.params)
    return step_fn(state.replace(params=params, extra=extra), batch, axis_name=None)

  return step


def mean_over_devices(tree: Any, axis_name: str | None) -> Any:
  """Identity on the global batch; the cross-device mean on a device's slice."""
  if axis_name is None:
    return tree
  return jax.lax.pmean(tree, axis_name)


LossFn = Callable[[Any, dict, jax.Array], tuple[jax.Array, dict]]
