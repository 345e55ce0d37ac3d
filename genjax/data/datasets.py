"""The dataset registry: `load(config.data)` is the data an experiment trains on.

Each dataset is one module, registered here by name, with two functions:

  add_config_fields(config)          declares its `data.*` fields with their defaults
  dataset(config.data, workdir)  ->  genjax.data.spec.Dataset (named splits of named
                                     arrays, a typed DataSpec, a training batch source)

Adding a dataset is a new module and one line in DATASETS (genjax/data/registry.py);
nothing that trains, samples, evaluates or restores names a dataset. `workdir` holds
what is derived from the training data (a tokenizer, k-means clusters), so that a
resumed or evaluated run sees the very same: reused when saved there, else built and
saved there.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import ml_collections

from genjax.config import ConfigError
from genjax.data.registry import DATASETS
from genjax.data.spec import Dataset


def module(name: str) -> ModuleType:
  """The module of dataset `name`, imported on first use (a dataset's dependencies load
  only when it is used)."""
  if name not in DATASETS:
    raise ConfigError(f'config.data.name={name!r} is not one of {tuple(DATASETS)}.')
  return importlib.import_module(DATASETS[name])


def add_config_fields(config: ml_collections.ConfigDict) -> None:
  """Declares the `data.*` fields of the dataset `config.data.name` names."""
  module(config.data.name).add_config_fields(config)


def load(data: ml_collections.ConfigDict, workdir: str | None = None) -> Dataset:
  return module(data.name).dataset(data, workdir)
