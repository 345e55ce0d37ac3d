"""What every image dataset shares: its config fields, subsets, and the derived features.

Image datasets (MNIST, Fashion-MNIST, fruits, a folder of the user's pictures) share one
set of `data.*` fields, so that `--config.data.name=` moves an experiment between them;
a field a dataset cannot honour is refused by that dataset. Images travel as uint8
[N, H, W, C] (4x less than floats); labels as int32.
"""

from __future__ import annotations

import ml_collections
import numpy as np

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.data import clusters
from genjax.data.spec import Arrays, Dataset, DataSpec, features_of


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  config_lib.add_fields(
    c,
    {
      'data.num_train': 0,  # training examples kept (a prefix); 0 = all
      'data.num_test': 0,  # test examples kept; 0 = all
      'data.num_anomaly': 0,  # anomaly examples kept (fruits: blue apples); 0 = all
      'data.image_size': 0,  # fruits and image folders: side in pixels; 0 = the default
      # Labelled datasets: the classes kept for training; the others form the anomaly
      # split (one-class anomaly detection). () = all.
      'data.digits': (),
      'data.binarize': False,  # pixels as fixed Bernoulli draws in test (VAE likelihoods)
      # > 0: k-means clusters of the training images as a 'cluster' feature (for
      # self-conditioned GANs), fitted once and saved in the workdir.
      'data.clusters': 0,
      'data.path': '',  # image folders: a folder or glob of the pictures
      'data.val_fraction': 0.1,  # image folders: share of the files (by path hash) that test
    },
  )


def refuse(data: ml_collections.ConfigDict, *fields: str) -> None:
  """A field this dataset cannot honour, set to anything but its default, is an error."""
  defaults = ml_collections.ConfigDict()
  add_config_fields(defaults)
  for field in fields:
    if data[field] != defaults.data[field]:
      raise ConfigError(
        f'config.data.{field}={data[field]!r}: the {data.name} dataset has no '
        f'use for it; leave it at {defaults.data[field]!r}.'
      )


def labelled(images: np.ndarray, labels: np.ndarray) -> Arrays:
  return {'image': images, 'label': labels.astype(np.int32)}


def select(arrays: Arrays, keep) -> Arrays:
  return {k: v[keep] for k, v in arrays.items()}


def prefix(arrays: Arrays, n: int) -> Arrays:
  """The first `n` examples (all when n is 0)."""
  if not n or not arrays:
    return arrays
  return select(arrays, np.arange(min(n, len(next(iter(arrays.values()))))))


def binarize_fixed(images: np.ndarray, seed: int = 0) -> np.ndarray:
  """One fixed stochastic binarization (pixel ~ Bernoulli(intensity)), as 0/255 bytes.

  The test set of the binarized-MNIST likelihood literature is binarized once, so that
  every model is scored on the same bits.
  """
  rng = np.random.default_rng(seed)
  return np.where(rng.random(images.shape) < images / 255.0, 255, 0).astype(np.uint8)


def finish(
  data: ml_collections.ConfigDict,
  splits: dict[str, Arrays],
  workdir: str | None,
  num_classes: int = 0,
) -> Dataset:
  """The dataset of `splits` with the shared options applied (sizes, clusters); its spec
  typed from the training arrays."""
  splits = dict(splits)
  for name, field in (
    ('train', 'num_train'),
    ('test', 'num_test'),
    ('normal_test', 'num_test'),
    ('anomaly', 'num_anomaly' if 'normal_test' not in splits else 'num_test'),
  ):
    if name in splits:
      splits[name] = prefix(splits[name], data[field])
  categorical = {'label': num_classes} if num_classes else {}
  if data.clusters:
    found = clusters.load_or_fit(splits['train']['image'], data.clusters, workdir)
    splits['train'] = dict(splits['train'], cluster=found.labels.astype(np.int32))
    categorical['cluster'] = data.clusters
  spec = DataSpec(features_of(splits['train'], **categorical))
  return Dataset(spec=spec, splits=splits)
