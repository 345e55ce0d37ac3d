"""GroupNorm: flax's parameters and outputs (so old checkpoints load), gradients too."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.models.group_norm import GroupNorm

KEY = jax.random.key(0)


def inputs(shape, seed=1):
  # An offset and a scale of their own per channel, as activations have.
  k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
  c = shape[-1]
  return jax.random.normal(k1, shape) * jax.random.uniform(
    k2, (c,), minval=0.5, maxval=3.0
  ) + jax.random.normal(k3, (c,))


def trained_like(variables, seed=3):
  """Scale and bias away from their init, so the test sees them used."""
  k1, k2 = jax.random.split(jax.random.key(seed))
  p = variables['params']
  return {
    'params': {
      'scale': p['scale'] + jax.random.normal(k1, p['scale'].shape),
      'bias': jax.random.normal(k2, p['bias'].shape),
    }
  }


@pytest.mark.parametrize('shape,groups', [((3, 6, 5, 16), 8), ((2, 4, 4, 12), 3), ((2, 7, 8), 4)])
def test_matches_flax_group_norm_with_the_same_parameters(shape, groups):
  x = inputs(shape)
  ours, flax_norm = GroupNorm(num_groups=groups), nn.GroupNorm(num_groups=groups)
  variables = ours.init(KEY, x)
  # The same tree as flax's: a checkpoint of either loads into the other.
  assert jax.tree.map(jnp.shape, variables) == jax.tree.map(jnp.shape, flax_norm.init(KEY, x))
  variables = trained_like(variables)
  np.testing.assert_allclose(
    ours.apply(variables, x), flax_norm.apply(variables, x), rtol=1e-5, atol=1e-5
  )

  def loss(norm, variables, x):
    return jnp.sum(jnp.sin(norm.apply(variables, x)))

  ours_grads = jax.grad(lambda v, x: loss(ours, v, x), argnums=(0, 1))(variables, x)
  flax_grads = jax.grad(lambda v, x: loss(flax_norm, v, x), argnums=(0, 1))(variables, x)
  for a, b in zip(jax.tree.leaves(ours_grads), jax.tree.leaves(flax_grads)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_each_group_comes_out_standardised():
  x = inputs((2, 5, 5, 8))
  y = GroupNorm(num_groups=2).apply(GroupNorm(num_groups=2).init(KEY, x), x)
  groups = np.asarray(y).reshape(2, 25, 2, 4).transpose(0, 2, 1, 3).reshape(2, 2, -1)
  np.testing.assert_allclose(groups.mean(-1), 0.0, atol=1e-5)
  np.testing.assert_allclose(groups.std(-1), 1.0, atol=1e-4)


def test_statistics_in_float32_and_the_result_in_dtype():
  x = inputs((2, 4, 4, 8)).astype(jnp.bfloat16) + 100.0  # a bfloat16 sum would lose it
  norm = GroupNorm(num_groups=4, dtype=jnp.bfloat16)
  variables = norm.init(KEY, x)
  y = norm.apply(variables, x)
  assert y.dtype == jnp.bfloat16 and variables['params']['scale'].dtype == jnp.float32
  reference = GroupNorm(num_groups=4).apply(variables, x.astype(jnp.float32))
  np.testing.assert_allclose(y.astype(jnp.float32), reference, atol=0.05)


def test_groups_that_do_not_divide_the_channels_fail_with_the_numbers():
  with pytest.raises(ValueError, match='num_groups=3 must divide the 8 channels'):
    GroupNorm(num_groups=3).init(KEY, jnp.zeros((1, 2, 2, 8)))
