"""The Vision Transformer: patches, shapes, pooling, validation, augmentation, and a
trained ViT workdir serving as the GAN metrics' feature network.

Shape checks use jax.eval_shape (traces, never compiles).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genjax.config import ConfigError
from genjax.data import datasets
from genjax.models import ViT
from genjax.models.vit import patchify, unpatchify
from genjax.run import loop, restore
from genjax.tasks import gan_evaluation
from genjax.tasks import vit as vit_task
from genjax.tasks.image_augment import CropFlip
from tests import tiny

KEY = jax.random.key(0)
TINY = dict(width=8, num_layers=1, num_heads=2)


def images(shape, batch=2, seed=0):
  return jax.random.uniform(jax.random.key(seed), (batch,) + tuple(shape))


def shapes_of(model, x, method=None):
  return jax.eval_shape(lambda: model.apply(model.init(KEY, x), x, method=method))


@pytest.mark.parametrize(
  'image_shape, patch', [((28, 28, 1), 4), ((28, 28, 1), 7), ((32, 32, 3), 4), ((6, 10, 2), 2)]
)
def test_patchify_unpatchify_round_trip(image_shape, patch):
  x = np.arange(3 * np.prod(image_shape), dtype=np.float32).reshape(3, *image_shape)
  patches = patchify(x, patch)
  h, w, c = image_shape
  assert patches.shape == (3, (h // patch) * (w // patch), patch * patch * c)
  np.testing.assert_array_equal(unpatchify(patches, patch, image_shape), x)
  # Row-major patches, each (row, column, channel): patch 1 is the next one to the right.
  np.testing.assert_array_equal(patches[0, 1], x[0, :patch, patch : 2 * patch].reshape(-1))


@pytest.mark.parametrize(
  'image_shape, num_classes, patch, pool, stem, tokens',
  [
    ((28, 28, 1), 10, 4, 'cls', 'patch', 50),  # MNIST / Fashion-MNIST: 7x7 patches + class
    ((28, 28, 1), 10, 7, 'mean', 'patch', 16),
    ((32, 32, 3), 5, 4, 'cls', 'patch', 65),  # fruits: 8x8 patches
    ((32, 32, 3), 5, 8, 'mean', 'patch', 16),
    ((28, 28, 1), 10, 4, 'cls', 'conv', 50),  # two stride-2 convolutions: 28 -> 14 -> 7
    ((32, 32, 3), 5, 8, 'mean', 'conv', 16),  # three: 32 -> 16 -> 8 -> 4
  ],
)
def test_logits_features_and_position_shapes(image_shape, num_classes, patch, pool, stem, tokens):
  model = ViT(
    image_shape=image_shape, num_classes=num_classes, patch_size=patch, pool=pool, stem=stem, **TINY
  )
  x = images(image_shape, batch=3)
  variables = jax.eval_shape(model.init, KEY, x)
  assert variables['params']['positions'].shape == (tokens, 8)
  assert ('cls_token' in variables['params']) == (pool == 'cls')
  logits = shapes_of(model, x)
  assert logits.shape == (3, num_classes) and logits.dtype == jnp.float32
  feats = shapes_of(model, x, method='features')
  assert feats.shape == (3, 8) and feats.dtype == jnp.float32
  convs = [k for k in variables['params'] if k.startswith('stem_convs')]
  assert len(convs) == (patch.bit_length() - 1 if stem == 'conv' else 0)


def test_pooling_and_determinism():
  x = images((28, 28, 1), batch=2)
  outputs = {}
  for pool in ('mean', 'cls'):
    model = ViT(pool=pool, dropout=0.5, **TINY)
    variables = jax.jit(model.init)(KEY, x)
    features = jax.jit(lambda v, xs: model.apply(v, xs, method='features'))
    # Features never drop out, whatever the rate: FID features are a function of the image.
    outputs[pool] = features(variables, x)
    np.testing.assert_array_equal(outputs[pool], features(variables, x))
  assert not np.allclose(outputs['cls'], outputs['mean'])

  # Training logits: dropout per example, the same whichever batch the example sits in.
  # The head starts at zero (zero logits); a random one lets dropout show in the logits.
  kernel = variables['params']['head']['kernel']
  variables['params']['head']['kernel'] = jax.random.normal(KEY, kernel.shape)
  train = jax.jit(
    lambda v, xs, ids: model.apply(v, xs, train=True, rngs={'dropout': KEY}, example_ids=ids)
  )
  both = train(variables, x, jnp.arange(2))
  np.testing.assert_allclose(train(variables, x[1:], jnp.arange(1, 2)), both[1:], rtol=1e-5)
  assert not np.allclose(both, jax.jit(model.apply)(variables, x))  # dropout is on


def test_bfloat16_outputs_float32_and_lists_become_tuples():
  model = ViT(image_shape=[28, 28, 1], dtype=jnp.bfloat16, **TINY)
  assert model.image_shape == (28, 28, 1)
  hash(model)  # hashable: usable as a jit static argument
  assert shapes_of(model, images((28, 28, 1))).dtype == jnp.float32


@pytest.mark.parametrize(
  'fields, message',
  [
    (
      dict(patch_size=5),
      r'patch size 5 does not divide the 28x28 image; use one of \[1, 2, 4, 7, 14, 28\]',
    ),
    (dict(image_shape=(32, 30, 3), patch_size=4), r'patch size 4 does not divide the 32x30'),
    (dict(width=10, num_heads=4), r'width \(10\) must be divisible by num_heads \(4\)'),
    (dict(pool='max'), r"pool must be one of \('cls', 'mean'\), got 'max'"),
    (dict(stem='cnn'), r"stem must be one of \('patch', 'conv'\), got 'cnn'"),
    (dict(stem='conv', patch_size=7), r"stem='conv' .* must be a power of two, got 7"),
    (dict(weight_init='he'), r"weight_init must be one of \('gpt', 'xavier'\), got 'he'"),
    (dict(dropout=1.0), r'dropout must be in \[0, 1\)'),
    (dict(num_classes=1), r'num_classes must be at least 2'),
    (dict(image_shape=(28, 28)), r'image_shape must be \(height, width, channels\)'),
  ],
)
def test_bad_hyperparameters_are_clear_errors(fields, message):
  with pytest.raises(ValueError, match=message):
    ViT(**fields)


@pytest.mark.parametrize('init', ['xavier', 'gpt'])
def test_block_kernels_start_as_init_says(init):
  width, layers = 64, 6
  model = ViT(width=width, num_layers=layers, num_heads=4, weight_init=init)
  params = nn.unbox(model.init(KEY, images((28, 28, 1))))['params']
  attn, mlp = params['blocks_0']['attn'], params['blocks_0']['mlp']
  qkv = np.asarray(attn['c_attn']['kernel'])
  assert qkv.shape == (width, 3 * width)
  if init == 'xavier':
    # Each of q, k and v is Glorot-uniform as its own [64, 64] matrix, not as one [64, 192].
    for part in np.split(qkv, 3, axis=1):
      assert np.abs(part).max() <= np.sqrt(6 / (2 * width))
      assert np.std(part) == pytest.approx(np.sqrt(2 / (2 * width)), rel=0.05)
    fc = np.asarray(mlp['c_fc']['kernel'])  # [64, 128]
    assert np.std(fc) == pytest.approx(np.sqrt(2 / (width + 2 * width)), rel=0.05)
  else:
    assert np.std(qkv) == pytest.approx(0.02, rel=0.05)
    proj = np.asarray(mlp['c_proj']['kernel'])
    assert np.std(proj) == pytest.approx(0.02 / np.sqrt(2 * layers), rel=0.05)


def test_bad_config_names_the_field():
  c = tiny.vit()
  c.model.patch_size = 5
  with pytest.raises(ConfigError, match=r'config.model: ViT: patch size 5 does not divide'):
    vit_task.make_model(c.model, (28, 28, 1))
  with pytest.raises(ConfigError, match='crop_padding=28 shifts a 28x28 image'):
    CropFlip(28).check((28, 28, 1))
  with pytest.raises(ConfigError, match='crop_padding=-1 must be >= 0'):
    CropFlip(-1)


def test_augmentation_keeps_shape_and_dtype_and_is_a_function_of_the_key():
  x = images((28, 28, 1), batch=8)
  keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(KEY, jnp.arange(8))
  augment = jax.jit(CropFlip(crop_padding=2, flip=True))
  out = augment(x, keys)
  assert out.shape == x.shape and out.dtype == x.dtype
  np.testing.assert_array_equal(out, augment(x, keys))  # same keys, same images
  np.testing.assert_array_equal(out[3:5], augment(x[3:5], keys[3:5]))  # per example
  assert not np.array_equal(out, augment(x, keys[::-1]))
  # A crop is a shift: each output is a window of the zero-padded input.
  padded = np.pad(np.asarray(x), ((0, 0), (2, 2), (2, 2), (0, 0)))
  for i in range(8):
    windows = [padded[i, dy : dy + 28, dx : dx + 28] for dy in range(5) for dx in range(5)]
    assert any(np.array_equal(out[i], w) or np.array_equal(out[i], w[:, ::-1]) for w in windows)
  off = CropFlip()
  assert off(x, keys) is x


def test_a_vit_workdir_is_the_gan_metrics_feature_network(tmp_path):
  c = tiny.vit(steps=2, dropout=0.0)
  c.train.eval_every = 0  # only what the GAN metrics need is compiled
  c.train.checkpoint_every = 2
  workdir = str(tmp_path / 'vit')
  loop.train_and_evaluate(c, workdir)
  model, variables = gan_evaluation.load_classifier(restore.RUNS, workdir)
  data = datasets.load(c.data)
  real = jnp.asarray(data.test['image'][:64], jnp.float32) / 255.0
  eval_config = ml_collections.ConfigDict(
    {'classifier_workdir': workdir, 'num_samples': 64, 'batch_size': 32}
  )
  report = gan_evaluation.evaluate(
    lambda _, z, y: real[: len(z)],
    (),
    (model, variables),
    data,
    KEY,
    eval_config,
    latent_dim=4,
    num_classes=0,
  )
  assert np.isfinite(report['fid']) and report['fid'] >= 0.0
  assert 0.0 <= report['precision'] <= 1.0
