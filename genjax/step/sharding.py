"""Where each array of the train state lives on the mesh.

'jit' and 'pmap' keep a whole copy of the state (parameters, optimizer moments, EMA) on
every device. 'fsdp' splits each large array along one of its axes over the mesh's
'data' axis (ZeRO-3, as big_vision's and MaxText's fsdp rules do), so a device holds
about 1 / N of the state; the step is the same jitted program, and XLA gathers each
weight where it is used and reduce-scatters its gradient from the annotations alone.
Arrays under `parallel.fsdp_min_size` elements (biases, norms, scalars) stay whole on
every device: gathering them costs more time than they save memory.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from genjax.step.parallel import AXIS as DATA  # the mesh's data axis, named once


def _spec(axes) -> P:
  """A PartitionSpec without trailing Nones: P('data') for ('data', None), P() for none."""
  axes = list(axes)
  while axes and axes[-1] is None:
    axes.pop()
  return P(*axes)


def fsdp_spec(shape: tuple[int, ...], num_shards: int, min_size: int) -> P:
  """The largest axis of `shape` that `num_shards` divides, split over 'data' (the
  first such axis on a tie); P() (whole on every device) for a small array or one with
  no such axis."""
  if num_shards < 2 or math.prod(shape) < max(min_size, 1):
    return P()
  for axis in sorted(range(len(shape)), key=lambda i: (-shape[i], i)):
    if shape[axis] % num_shards == 0:
      return _spec(DATA if i == axis else None for i in range(len(shape)))
  return P()


def leaf_spec(
  shape: tuple[int, ...],
  logical: P | None,
  mesh: Mesh,
  rules: dict[str, str],
  strategy: str,
  min_size: int,
) -> P:
  """Where one array lives: each axis with a logical name that `rules` maps onto an axis of
  this mesh is split over it (when its size divides; a mesh axis used once), then under
  'fsdp' the largest axis left that the 'data' axis divides (`fsdp_spec`)."""
  axes: list[str | None] = [None] * len(shape)
  for i, name in enumerate(tuple(logical or ())[: len(shape)]):
    target = rules.get(name) if name else None
    if target in mesh.axis_names and target not in axes and shape[i] % mesh.shape[target] == 0:
      axes[i] = target
  big = math.prod(shape) >= max(min_size, 1)
  if strategy == 'fsdp' and DATA in mesh.axis_names and DATA not in axes and big:
    free = tuple(1 if axes[i] else size for i, size in enumerate(shape))  # 1: never chosen
    for i, name in enumerate(fsdp_spec(free, mesh.shape[DATA], 0)):
      axes[i] = name or axes[i]
  return _spec(axes)


def state_sharding(
  shapes: Any,
  mesh: Mesh,
  strategy: str,
  min_size: int = 0,
  logical: Any = None,
  rules: Any = (),
) -> Any:
  """A NamedSharding for each leaf of `shapes` (arrays or `jax.ShapeDtypeStruct`s).

  `logical`: the same tree with a PartitionSpec of logical axis names at each leaf
  (`flax.linen.get_partition_spec` of the state as the model annotates it; None: no
  names), and `rules` the (name, mesh axis) pairs that map them
  (`config.parallel.logical_axis_rules`). Under 'jit' and 'pmap' an array is split only
  where its names say; under 'fsdp' over 'data' too (`leaf_spec`)."""
  rules = dict(rules)
  leaves, tree = jax.tree.flatten(shapes)
  names = [None] * len(leaves)
  if logical is not None:
    names = jax.tree.leaves(logical, is_leaf=lambda x: x is None or isinstance(x, P))
    if len(names) != len(leaves):
      raise ValueError(f'{len(names)} logical specs for {len(leaves)} arrays of the state.')
  specs = [
    leaf_spec(x.shape, name, mesh, rules, strategy, min_size) for x, name in zip(leaves, names)
  ]
  return jax.tree.unflatten(tree, [NamedSharding(mesh, spec) for spec in specs])


def bytes_per_device(tree: Any) -> int:
  """Bytes of `tree` one device holds: each leaf's shard (arrays or ShapeDtypeStructs
  with a sharding; a leaf without one counts whole)."""
  total = 0
  for leaf in jax.tree.leaves(tree):
    sharding = getattr(leaf, 'sharding', None)
    shape = sharding.shard_shape(leaf.shape) if sharding is not None else leaf.shape
    total += math.prod(shape) * np.dtype(leaf.dtype).itemsize
  return total
