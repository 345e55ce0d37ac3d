"""The family registry: `config.task` -> the module that trains it.

Each family is one module, registered here by name, with two functions:

  add_config_fields(config)             declares its fields (model.*, loss.*, eval.*,
                                        and any data.* of its own) with their defaults
  build(config, spec, runs) -> Task     its pure functions (genjax.tasks.base.Task)

`experiment_config(task, dataset)` is where an experiment file starts: the shared fields,
the dataset's and the family's, every field with its default, locked, so that a
mistyped field, in an experiment file or on the command line, is an error before any
compute. Adding a family is a new module and one line in FAMILIES (genjax/tasks/families.py).
"""

from __future__ import annotations

import importlib
from types import ModuleType

import ml_collections

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.data import datasets
from genjax.tasks.base import Task
from genjax.tasks.families import FAMILIES


def family(name: str) -> ModuleType:
  """The module of family `name`, imported on first use: one family's dependencies load
  only when it is used."""
  if name not in FAMILIES:
    raise ConfigError(f'config.task={name!r} is not one of {tuple(FAMILIES)}.')
  return importlib.import_module(FAMILIES[name])


def experiment_config(task: str, dataset: str) -> ml_collections.ConfigDict:
  """Every field of `task` trained on `dataset`, with its default; locked (no new fields)."""
  config = config_lib.base_config()
  config.task, config.data.name = task, dataset
  datasets.add_config_fields(config)
  family(task).add_config_fields(config)
  config.lock()
  return config


def check_fields(config: ml_collections.ConfigDict) -> None:
  """Fields the family and dataset do not declare are refused, by name."""
  known = set(config_lib.flatten(experiment_config(config.task, config.data.name)))
  unknown = sorted(set(config_lib.flatten(config)) - known)
  if unknown:
    raise ConfigError(
      f'config fields {unknown} are not fields of the {config.task!r} family or the '
      f'{config.data.name!r} dataset; check their spelling (the fields and their defaults: '
      f'genjax.tasks.experiment_config({config.task!r}, {config.data.name!r})).'
    )


def complete(saved: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A config read back from a workdir, with any field added since it was written set to
  its default (the saved values win)."""
  config = experiment_config(saved.task, saved.data.name)
  known = config_lib.flatten(config)
  with config.unlocked():
    for field, value in config_lib.flatten(saved).items():
      if field in known:
        config_lib.set_path(config, field, config_lib.upgraded(field, value))
  return config


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  """The Task of `config.task` for data of `spec` (a genjax.data.spec.DataSpec).

  `runs` loads other trained runs for the families that use one (a GAN's evaluation
  classifier, augmentation's generator): `runs.config(workdir)` and `runs.load(workdir)`
  (genjax.api.RUNS); families never import the loader themselves.
  """
  return family(config.task).build(config, spec, runs)
