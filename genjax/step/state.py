"""The train state: everything a step reads and writes, as one pytree of arrays.

It holds no functions (no `apply_fn`, no optimizer object), so it checkpoints with
Orbax as plain arrays and passes through `jit`/`shard_map` without static baggage.
Families with several networks (a GAN's generator and discriminator) keep dicts in
`params` and `opt_state`; `extra` holds non-trained collections (batch statistics,
EMA weights).
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: number of updates applied so far
  params: Any
  opt_state: Any
  rng: jax.Array  # uint32[2] root key; step keys are fold_in(rng, step)
  extra: Any = flax.struct.field(default_factory=dict)


def init_opt_state(tx, params: Any) -> Any:
  """`tx` is one optax transformation, or a dict of them for the params' top-level keys
  (separate optimizers whose states never see each other's gradients)."""
  if isinstance(tx, dict):
    return {name: t.init(params[name]) for name, t in tx.items()}
  return tx.init(params)


def create(params: Any, tx, rng: jax.Array, extra: Any = None) -> TrainState:
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    opt_state=init_opt_state(tx, params),
    rng=rng,
    extra={} if extra is None else extra,
  )


def step_key(state: TrainState) -> jax.Array:
  """The key for this step: a pure function of (seed, step), so resume replays it."""
  return jax.random.fold_in(state.rng, state.step)
