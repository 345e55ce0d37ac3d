"""UNet: shapes, zero output at init, conditioning on time and class (the null class for
classifier-free guidance), dropout only in training, jit, and the argument checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from genjax.models import UNet
from genjax.models import unet

# Tiny widths keep each compile to a fraction of a second; 16x16 has sizes (16, 8).
TINY = dict(channels=8, channel_mults=(1, 2), num_res_blocks=1, num_heads=2, num_groups=4)
SHAPE = (16, 16, 3)
KEY = jax.random.key(0)


def images(shape=SHAPE, batch=2, seed=1):
  return jax.random.normal(jax.random.key(seed), (batch,) + tuple(shape))


def perturbed(variables, scale=0.1, seed=7):
  """The variables plus Gaussian noise: the zero-initialised last convs no longer zero.

  One draw for all of them: a draw per leaf would compile once per leaf shape.
  """
  flat, unravel = ravel_pytree(variables)
  return unravel(flat + scale * jax.random.normal(jax.random.key(seed), flat.shape))


@pytest.fixture(scope='module')
def conditional():
  """A 3-class model on 16x16x3 images, its variables at init and its jitted apply (every
  test here runs under jit: each compile is one program, where eager would compile every
  op of the net on its own)."""
  model = UNet(attention_resolutions=(8,), num_classes=3, dropout=0.5, **TINY)
  variables = jax.jit(model.init)(KEY, images(), jnp.zeros(2), jnp.array([0, 1]))
  apply = jax.jit(model.apply, static_argnames='train')
  return model, variables, apply


def test_output_has_the_input_shape_and_is_zero_at_init(conditional):
  _, variables, apply = conditional
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  x = images()
  out = apply(variables, x, jnp.array([0.1, 0.9]), jnp.array([0, 2]))
  assert out.shape == x.shape and out.dtype == jnp.float32
  # Zero-initialised last convs: the model starts by predicting exactly 0.
  np.testing.assert_array_equal(out, 0.0)


def test_mnist_sizes_halve_to_seven():
  model = UNet(attention_resolutions=(7,), **dict(TINY, channel_mults=(1, 2, 2)))
  x = images((28, 28, 1))
  time = jnp.array([0.1, 0.9])
  # Shapes by tracing alone, then random values: the init needs no compile of its own.
  shapes = jax.eval_shape(model.init, KEY, x, time)
  # Attention at the 7x7 level (and in the middle), nowhere else.
  attention = sorted(name for name in shapes['params'] if 'attn' in name)
  assert attention == ['down_2_attn_0', 'mid_attn', 'up_2_attn_0', 'up_2_attn_1']
  variables = perturbed(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes))
  out = jax.jit(model.apply)(variables, x, time)
  assert out.shape == x.shape and out.dtype == jnp.float32
  assert bool(jnp.all(jnp.isfinite(out))) and float(jnp.std(out)) > 0


def test_output_depends_on_class_and_time(conditional):
  _, variables, apply = conditional
  variables = perturbed(variables)
  x = images()
  t = jnp.array([0.3, 0.3])
  out = apply(variables, x, t, jnp.array([0, 0]))
  assert not np.allclose(out, apply(variables, x, t, jnp.array([1, 1])))
  assert not np.allclose(out, apply(variables, x, jnp.array([0.31, 0.31]), jnp.array([0, 0])))


def test_a_scalar_time_is_every_example_s_time():
  np.testing.assert_array_equal(unet._check_time(0.3, 4), jnp.full(4, 0.3))
  np.testing.assert_array_equal(unet._check_time(jnp.array([1, 2]), 2), [1.0, 2.0])


def test_no_labels_on_a_conditional_model_means_the_null_class(conditional):
  model, variables, apply = conditional
  variables = perturbed(variables)
  x = images()
  t = jnp.array([0.5, 0.2])
  null = apply(variables, x, t, None)
  np.testing.assert_array_equal(null, apply(variables, x, t, jnp.full(2, model.num_classes)))
  assert not np.allclose(null, apply(variables, x, t, jnp.array([2, 2])))
  # The null class is a row of the embedding like the others.
  assert variables['params']['class_embed']['embedding'].shape[0] == model.num_classes + 1


def test_labels_are_checked(conditional):
  model, variables, _ = conditional
  with pytest.raises(ValueError, match=r'integer labels of shape \[2\]'):
    model.apply(variables, images(), jnp.zeros(2), jnp.array([0.0, 1.0]))
  unconditional = UNet(attention_resolutions=(8,), **TINY)
  with pytest.raises(ValueError, match='unconditional.*set num_classes'):
    unconditional.init(KEY, images(), jnp.zeros(2), jnp.array([0, 1]))


def test_dropout_only_in_training(conditional):
  _, variables, apply = conditional
  variables = perturbed(variables)
  x, t, labels = images(), jnp.array([0.5, 0.5]), jnp.array([0, 1])
  # Evaluation needs no rng and is deterministic.
  evaluation = apply(variables, x, t, labels)
  np.testing.assert_array_equal(evaluation, apply(variables, x, t, labels, train=False))
  first = apply(variables, x, t, labels, train=True, rngs={'dropout': jax.random.key(1)})
  again = apply(variables, x, t, labels, train=True, rngs={'dropout': jax.random.key(1)})
  other = apply(variables, x, t, labels, train=True, rngs={'dropout': jax.random.key(2)})
  np.testing.assert_array_equal(first, again)
  assert not np.allclose(first, other) and not np.allclose(first, evaluation)


def test_sizes_the_levels_cannot_halve_fail_with_what_to_change():
  model = UNet(channels=8, channel_mults=(1, 2, 2, 2), attention_resolutions=(), num_groups=4)
  with pytest.raises(ValueError, match=r'28x28 image.*channel_mults=\(1, 2, 2, 2\).*by 8'):
    model.init(KEY, images((28, 28, 1)), jnp.zeros(2))
  model = UNet(attention_resolutions=(8,), **dict(TINY, channel_mults=(1, 2, 2)))  # 28: 7
  with pytest.raises(ValueError, match=r'not a feature-map size.*\(28, 14, 7\)'):
    model.init(KEY, images((28, 28, 1)), jnp.zeros(2))
  with pytest.raises(ValueError, match=r'float images \[batch, height, width, channels\]'):
    UNet(**TINY).init(KEY, jnp.zeros((2, 16, 16)), jnp.zeros(2))
  with pytest.raises(ValueError, match=r'time of shape \[2\]'):
    UNet(attention_resolutions=(8,), **TINY).init(KEY, images(), jnp.zeros(3))


def test_space_to_depth_is_inverted_by_depth_to_space():
  x = images((28, 28, 3))
  patched = unet.space_to_depth(x, 2)
  assert patched.shape == (2, 14, 14, 12)
  # Each output pixel holds its 2x2 patch: pixel (0, 0) is x[0:2, 0:2].
  np.testing.assert_array_equal(patched[:, 0, 0], x[:, 0:2, 0:2].reshape(2, 12))
  np.testing.assert_array_equal(unet.depth_to_space(patched, 2), x)


def test_a_patched_unet_works_on_half_size_maps():
  model = UNet(attention_resolutions=(7,), patch_size=2, **TINY)  # 28 -> 14 -> 7
  x = images((28, 28, 1))
  time = jnp.array([0.1, 0.9])
  assert model.check_image(28, 28) == (14, 7)
  shapes = jax.eval_shape(model.init, KEY, x, time)
  assert shapes['params']['conv_in']['kernel'].shape == (3, 3, 4, 8)
  assert shapes['params']['conv_out']['kernel'].shape[-1] == 4
  variables = perturbed(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes))
  out = jax.jit(model.apply)(variables, x, time)
  assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))
  with pytest.raises(ValueError, match=r'30x30 image cannot be cut into 2x2 patches.*by 4'):
    model.check_image(30, 30)


def test_fourier_features_say_where_a_value_lies_between_8_bit_levels():
  centres = (2.0 * jnp.arange(256) + 1.0) / 256 - 1.0  # VDM's levels in [-1, 1]
  x = jnp.stack([centres, centres + 1.0 / 256], axis=-1)[None, None]  # [1, 1, 256, 2]
  features = unet.fourier_features(x, (6, 7))
  assert features.shape == (1, 1, 256, 8)  # sin n=6, n=7, then cos n=6, n=7; 2 channels
  sines, cosines = features[..., :4].reshape(256, 2, 2), features[..., 4:].reshape(256, 2, 2)
  # n = 7: one period a level, so the same at every centre and opposite halfway between.
  np.testing.assert_allclose(cosines[:, 1, 0], -1.0, atol=1e-4)
  np.testing.assert_allclose(cosines[:, 1, 1], 1.0, atol=1e-4)
  # n = 6: one period across two levels, so the sines tell odd levels from even ones.
  np.testing.assert_allclose(sines[:, 0, 0], np.where(np.arange(256) % 2, -1.0, 1.0), atol=1e-4)
  # In the network: the input channels grow by 2 N C, and the output sees the features.
  model = UNet(attention_resolutions=(8,), fourier_exponents=(6, 7), **TINY)
  shapes = jax.eval_shape(model.init, KEY, images(), jnp.zeros(2))
  assert shapes['params']['conv_in']['kernel'].shape == (3, 3, 3 * 5, 8)


@pytest.mark.parametrize(
  'change,message',
  [
    (dict(channel_mults=()), 'channel_mults must be a non-empty tuple'),
    (dict(channel_mults=(1, 0)), 'channel_mults must be a non-empty tuple'),
    (dict(num_heads=3), r'num_heads=3 .* divide every level width \(8, 16\)'),
    (dict(num_classes=-1), 'num_classes must be >= 0'),
    (dict(dropout=1.0), r'dropout must be in \[0, 1\)'),
    (dict(num_res_blocks=0), 'num_res_blocks must be >= 1'),
    (dict(time_scale=0.0), 'time_scale must be positive'),
    (dict(patch_size=0), 'patch_size must be >= 1'),
  ],
)
def test_bad_configs_fail_at_construction(change, message):
  with pytest.raises(ValueError, match=message):
    UNet(**dict(TINY, **change))


def test_group_count_is_the_largest_divisor_within_num_groups():
  assert unet.group_count(64, 32) == 32
  assert unet.group_count(8, 32) == 8
  assert unet.group_count(24, 32) == 24
  assert unet.group_count(48, 32) == 24
  assert unet.group_count(192, 32) == 32
