"""Byte-resolution dropout: the rate it keeps, unbiased outputs, per-example masks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.models import DecoderLM
from genjax.models import dropout

KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize('rate,count', [(0.0, 256), (0.2, 205), (0.5, 128), (0.999, 1)])
def test_rate_rounds_to_a_multiple_of_one_256th(rate, count):
  assert dropout.keep_count(rate) == count
  assert dropout.keep_probability(rate, 32) == 1.0 - rate


@pytest.mark.parametrize('bits', [8, 32])
def test_masks_keep_the_stated_share_and_outputs_stay_unbiased(bits):
  layer = dropout.Dropout(0.2, bits)
  x = jnp.ones((1000, 1000))
  y = np.asarray(layer.apply({}, x, False, rngs={'dropout': KEY}))
  kept = y != 0
  # 1e6 draws: the share is within 5 standard deviations (4e-4) of the stated one.
  assert abs(kept.mean() - dropout.keep_probability(0.2, bits)) < 2e-3
  np.testing.assert_allclose(y[kept], 1.0 / dropout.keep_probability(0.2, bits), rtol=1e-6)
  assert abs(y.mean() - 1.0) < 5e-3
  # Off outside training, and at rate 0.
  np.testing.assert_array_equal(layer.apply({}, x, True), x)
  np.testing.assert_array_equal(dropout.Dropout(0.0).apply({}, x, False), x)


def test_byte_masks_cover_sizes_that_are_not_multiples_of_four():
  mask = dropout.keep_mask(KEY, (3, 7, 5), 0.5)
  assert mask.shape == (3, 7, 5) and mask.dtype == jnp.bool_
  assert 0 < np.asarray(mask).mean() < 1


def test_per_example_masks_depend_on_the_example_id_only():
  layer = dropout.Dropout(0.5)
  x = jnp.ones((4, 64))
  batch = layer.apply({}, x, False, jnp.arange(4), rngs={'dropout': KEY})
  # Example 2 alone, as a device holding only it would see it.
  alone = layer.apply({}, x[2:3], False, jnp.asarray([2]), rngs={'dropout': KEY})
  np.testing.assert_array_equal(batch[2:3], alone)
  assert not np.array_equal(batch[0], batch[1])


def test_bad_settings_fail_clearly():
  with pytest.raises(ValueError, match=r'rate must be in \[0, 1\)'):
    dropout.keep_count(1.0)
  with pytest.raises(ValueError, match='bits must be one of'):
    dropout.keep_mask(KEY, (4,), 0.5, bits=16)
  with pytest.raises(ValueError, match='dropout_bits must be one of'):
    DecoderLM(vocab_size=8, block_size=4, num_layers=1, num_heads=1, width=8, dropout_bits=16)
