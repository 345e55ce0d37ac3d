"""Comparing pytrees in tests: the structures first, then every leaf.

`zip(jax.tree.leaves(a), jax.tree.leaves(b))` stops at the shorter tree, so two trees of
different structure could pass; these fail on that instead.
"""

import jax
import numpy as np


def _check_structures(a, b) -> None:
  sa, sb = jax.tree.structure(a), jax.tree.structure(b)
  assert sa == sb, f'different tree structures:\n{sa}\n{sb}'


def assert_trees_equal(a, b) -> None:
  _check_structures(a, b)
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def assert_trees_close(a, b, **tolerances) -> None:
  _check_structures(a, b)
  jax.tree.map(
    lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tolerances), a, b
  )
