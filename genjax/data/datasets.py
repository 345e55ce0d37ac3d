"""`load(config.data)`: the data an experiment trains and evaluates on.

Image datasets are held in host memory as uint8 images [N, H, W, C] and int32 labels
(MNIST is 47 MB); the pipeline gathers batches from these arrays. Text corpora
(`genjax.data.text`) are token streams read as random windows. Both answer the loop
the same way: `spec` (what the model's shapes depend on), `train_source(batch_size,
seed)` (the batches) and `test` (arrays of fixed evaluation examples).
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from genjax.config import ConfigError
from genjax.data import clusters, files, fruits, mnist, pipeline

DATASETS = ('mnist', 'fashion-mnist', 'fruits')
TEXT_DATASETS = ('tinyshakespeare', 'python_stdlib', 'text')
Arrays = dict[str, np.ndarray]


@dataclasses.dataclass
class Dataset:
  train: Arrays
  test: Arrays
  # Examples never seen in training that an anomaly detector should flag, and test
  # examples of the normal classes: the two sides of the AUROC.
  anomaly: Arrays
  normal_test: Arrays
  image_shape: tuple[int, int, int]

  @property
  def spec(self) -> tuple[int, int, int]:
    """What an image family's model shapes depend on: (height, width, channels)."""
    return self.image_shape

  def train_source(self, batch_size: int, seed: int) -> pipeline.ArraySource:
    return pipeline.ArraySource(self.train, batch_size, seed)


def _arrays(images: np.ndarray, labels: np.ndarray) -> Arrays:
  return {'image': images, 'label': labels.astype(np.int32)}


def _select(arrays: Arrays, keep: np.ndarray) -> Arrays:
  return {k: v[keep] for k, v in arrays.items()}


def binarize_fixed(images: np.ndarray, seed: int = 0) -> np.ndarray:
  """One fixed stochastic binarization (pixel ~ Bernoulli(intensity)), as 0/255 bytes.

  The test set of the binarized-MNIST likelihood literature is binarized once, so that
  every model is scored on the same bits.
  """
  rng = np.random.default_rng(seed)
  return np.where(rng.random(images.shape) < images / 255.0, 255, 0).astype(np.uint8)


def load(data: ml_collections.ConfigDict, workdir: str | None = None):
  """The dataset `data` names: a `Dataset` of images or a `text.TextData`.

  `workdir` holds what is derived from the training data, so that a resumed or evaluated
  run sees the very same: a text tokenizer, or with `data.clusters` the k-means clusters
  of the training images (`train['cluster']`, for self-conditioned GANs). Either is
  reused when saved there, else built and saved there.
  """
  if data.name in TEXT_DATASETS:
    from genjax.data import text  # pylint: disable=import-outside-toplevel
    return text.load_text(data, data.block_size, workdir)
  if data.name not in DATASETS:
    raise ConfigError(f'config.data.name={data.name!r} is not one of '
                      f'{DATASETS + TEXT_DATASETS}.')
  if data.name == 'fruits':
    size = data.get('image_size', 32)
    train = _arrays(*fruits.load_fruits('train', data.get('num_train', None) or None, size=size))
    test = _arrays(*fruits.load_fruits('test', data.get('num_test', None) or None, size=size))
    anomaly = _arrays(*fruits.load_fruits('anomaly', data.get('num_anomaly', None) or None,
                                          size=size))
    return _with_clusters(Dataset(train, test, anomaly, test, (size, size, 3)), data, workdir)

  root = files.resolve_data_dir(data.dir)
  train = _arrays(*mnist.load_mnist(root, data.name, 'train'))
  test = _arrays(*mnist.load_mnist(root, data.name, 'test'))
  if data.get('binarize', False):
    test['image'] = binarize_fixed(test['image'])
  digits = tuple(data.get('digits', ()))
  if digits:
    if not set(digits) <= set(range(10)):
      raise ConfigError(f'config.data.digits={digits} must be classes in 0..9.')
    train = _select(train, np.isin(train['label'], digits))
    normal = np.isin(test['label'], digits)
    anomaly, normal_test = _select(test, ~normal), _select(test, normal)
    test = normal_test  # a one-class model's test loss is on its own class
  else:
    anomaly, normal_test = {}, test
  if data.get('num_train', 0):
    train = _select(train, np.arange(min(data.num_train, len(train['label']))))
  if data.get('num_test', 0):
    n = data.num_test
    test = _select(test, np.arange(min(n, len(test['label']))))
    normal_test = _select(normal_test, np.arange(min(n, len(normal_test['label']))))
    if anomaly:
      anomaly = _select(anomaly, np.arange(min(n, len(anomaly['label']))))
  return _with_clusters(Dataset(train, test, anomaly, normal_test, (28, 28, 1)), data, workdir)


def _with_clusters(dataset: Dataset, data: ml_collections.ConfigDict, workdir) -> Dataset:
  if data.get('clusters', 0):
    found = clusters.load_or_fit(dataset.train['image'], data.clusters, workdir)
    dataset.train['cluster'] = found.labels
  return dataset
