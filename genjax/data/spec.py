"""What a dataset gives a family: named splits of named arrays, described by a `DataSpec`.

A dataset (`genjax.data.datasets.load`) returns a `Dataset`: splits ('train', 'test', and
for anomaly detection 'anomaly' and 'normal_test') of named host arrays, a batch source
for training, and a `DataSpec` that types each feature the model sees: its per-example
shape, dtype, how many values a categorical feature takes, and which tokenizer a token
feature uses. The spec is saved in the workdir (`data_spec.json`, beside the tokenizers
it names), and it is all that restore, sampling and evaluation need to rebuild a model:
`example_batch(spec)` gives the arrays that `init` traces, for the loop and for restore.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any, Mapping

import numpy as np

from genjax.data import pipeline

SPEC_FILE = 'data_spec.json'
Arrays = dict[str, np.ndarray]
# Variable-length features: traced at this length (any bucket length gives the same params).
EXAMPLE_LENGTH = 8


@dataclasses.dataclass(frozen=True)
class Feature:
  """One named array of an example.

  shape: per example; `None` for a variable-length axis (batches then also carry a bool
    `NAME_mask` of the padded shape).
  dtype: numpy dtype name of the batches ('uint8' images, 'int32' labels and tokens).
  num_values: a categorical feature's values are 0..num_values-1 (classes, clusters).
  tokenizer: a token feature's tokenizer: the folder of the workdir that holds it.
  """

  shape: tuple[int | None, ...]
  dtype: str
  num_values: int = 0
  tokenizer: str = ''


@dataclasses.dataclass
class DataSpec:
  """The features of a dataset's examples, plus the tokenizers they name (loaded)."""

  features: dict[str, Feature]
  tokenizers: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

  def __getitem__(self, name: str) -> Feature:
    return self.features[name]

  def __contains__(self, name: str) -> bool:
    return name in self.features

  def tokenizer(self, feature: str):
    return self.tokenizers[self.features[feature].tokenizer]

  def image_shape(self, feature: str = 'image') -> tuple[int, int, int]:
    return tuple(self.features[feature].shape)

  def to_json(self) -> dict:
    return {
      name: {
        'shape': list(f.shape),
        'dtype': f.dtype,
        'num_values': f.num_values,
        'tokenizer': f.tokenizer,
      }
      for name, f in self.features.items()
    }

  def save(self, workdir: str | os.PathLike) -> None:
    """Writes data_spec.json atomically, and each tokenizer the workdir does not hold yet."""
    for name, tokenizer in self.tokenizers.items():
      if not (pathlib.Path(workdir) / name).exists():
        tokenizer.save(pathlib.Path(workdir) / name)
    path = pathlib.Path(workdir) / SPEC_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix('.json.tmp')
    tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + '\n')
    os.replace(tmp, path)

  @classmethod
  def load(cls, workdir: str | os.PathLike) -> 'DataSpec':
    from genjax.data import tokenizers  # pylint: disable=import-outside-toplevel

    path = pathlib.Path(workdir) / SPEC_FILE
    if not path.exists():
      raise FileNotFoundError(
        f'{path} not found: the workdir was not written by this version '
        'of genjax (train it again with launch.main).'
      )
    features = {
      name: Feature(
        shape=tuple(f['shape']),
        dtype=f['dtype'],
        num_values=f['num_values'],
        tokenizer=f['tokenizer'],
      )
      for name, f in json.loads(path.read_text()).items()
    }
    names = {f.tokenizer for f in features.values() if f.tokenizer}
    loaded = {n: tokenizers.load_tokenizer(pathlib.Path(workdir) / n) for n in sorted(names)}
    return cls(features, loaded)


def example_batch(spec: DataSpec, batch_size: int = 1) -> Arrays:
  """Zeros of every feature for `batch_size` examples, plus 'index': what `init` traces."""
  batch = {}
  for name, f in spec.features.items():
    shape = tuple(EXAMPLE_LENGTH if d is None else d for d in f.shape)
    batch[name] = np.zeros((batch_size, *shape), f.dtype)
    if None in f.shape:
      batch[f'{name}_mask'] = np.ones((batch_size, *shape), bool)
  batch['index'] = np.arange(batch_size, dtype=np.int32)
  return batch


def features_of(arrays: Mapping[str, np.ndarray], **categorical: int) -> dict[str, Feature]:
  """Fixed-shape features typed from arrays [N, ...]; `categorical` gives num_values."""
  return {
    name: Feature(tuple(a.shape[1:]), a.dtype.name, categorical.get(name, 0))
    for name, a in arrays.items()
  }


@dataclasses.dataclass
class Dataset:
  """Splits of named arrays, their spec, and how training batches are drawn.

  `source(batch_size, seed)` defaults to epochs over `splits['train']`; a corpus read as
  random windows brings its own. `extras` holds what a family's evaluation reads that
  is not an array (a text corpus's validation documents).
  """

  spec: DataSpec
  splits: dict[str, Arrays]
  source: Any = None
  extras: dict[str, Any] = dataclasses.field(default_factory=dict)

  def split(self, name: str) -> Arrays:
    """A split's arrays; {} when the dataset has no such split."""
    return self.splits.get(name, {})

  @property
  def train(self) -> Arrays:
    return self.split('train')

  @property
  def test(self) -> Arrays:
    return self.split('test')

  @property
  def anomaly(self) -> Arrays:
    """Examples an anomaly detector trained on the others should flag."""
    return self.split('anomaly')

  @property
  def normal_test(self) -> Arrays:
    """Test examples of the normal classes: the other side of the AUROC."""
    return self.split('normal_test') or self.test

  def train_source(self, batch_size: int, seed: int):
    if self.source is not None:
      return self.source(batch_size, seed)
    return pipeline.ArraySource(self.train, batch_size, seed)
