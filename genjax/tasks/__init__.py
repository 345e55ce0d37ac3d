"""Per-family pure functions (init, loss, step, eval, views) bundled as a `Task`."""

from __future__ import annotations

import ml_collections

from genjax.config import ConfigError
from genjax.tasks.base import Task

FAMILIES = ('vae', 'autoencoder', 'classifier', 'gan', 'lm')


def build(config: ml_collections.ConfigDict, data_spec) -> Task:
  """The Task of `config.task`, imported lazily so one family's deps never load another's.

  `data_spec` is what the model's shapes depend on (`Dataset.spec`): the image shape
  for image families, the tokenizer for the language model.
  """
  if config.task == 'vae':
    from genjax.tasks import vae as family  # pylint: disable=import-outside-toplevel
  elif config.task == 'autoencoder':
    from genjax.tasks import autoencoder as family  # pylint: disable=import-outside-toplevel
  elif config.task == 'classifier':
    from genjax.tasks import classifier as family  # pylint: disable=import-outside-toplevel
  elif config.task == 'gan':
    from genjax.tasks import gan as family  # pylint: disable=import-outside-toplevel
  elif config.task == 'lm':
    from genjax.tasks import lm as family  # pylint: disable=import-outside-toplevel
  else:
    raise ConfigError(f'config.task={config.task!r} is not one of {FAMILIES}.')
  try:
    return family.build(config, data_spec)
  except TypeError as e:  # a model field the module does not take
    raise ConfigError(f'config.model does not fit the {config.task} model: {e}') from e
