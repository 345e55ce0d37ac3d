"""The `model.*` fields of the families that train `genjax.models.Encoder`, and the model.

Pretraining ('bert') and fine-tuning ('text_classifier') declare the same fields with the
same defaults, so that a classifier built with the defaults of the pretrained run has the
pretrained encoder's shapes (`config.init_from` copies the trunk; it needs them equal).
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.models import Encoder

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  config_lib.add_fields(
    c,
    {
      # genjax.models.Encoder's arguments, but vocab_size (the tokenizer's), max_length
      # (the data's) and num_classes (the data's, in a classifier).
      'model.num_layers': 4,
      'model.num_heads': 4,
      'model.width': 192,
      'model.mlp_ratio': 4,
      'model.dropout': 0.1,
      'model.use_bias': True,
      'model.dtype': 'float32',  # computation dtype: 'float32' | 'bfloat16'
      'model.remat': 'none',  # activation checkpointing: 'none' | 'full' | 'dots' | 'dots_no_batch'
      'model.dropout_bits': 8,  # random bits per dropout mask element: 8 or 32 (exact rate)
    },
  )


def make_encoder(
  model_config: ml_collections.ConfigDict, vocab_size: int, max_length: int, num_classes: int = 0
) -> Encoder:
  fields = model_config.to_dict()
  dtype = fields.pop('dtype', 'float32')
  if dtype not in DTYPES:
    raise ConfigError(f'config.model.dtype={dtype!r} is not one of {tuple(DTYPES)}.')
  try:
    return Encoder(
      vocab_size=vocab_size,
      max_length=max_length,
      num_classes=num_classes,
      dtype=DTYPES[dtype],
      **fields,
    )
  except ValueError as e:  # a size that cannot work, named by the model
    raise ConfigError(f'config.model: {e}.') from e
