"""Pure Flax linen models; ``models`` imports nothing of genjax but ``models.layers``.

`from genjax.models import VAE` imports only the module that defines VAE (PEP 562), so a
program loads the models it uses and no others, and a record of a measurement
(bench/records.py reads `_EXPORTS` to follow these names) does not go stale when an
unrelated model changes.
"""

import importlib

_EXPORTS = {
  'Autoencoder': 'autoencoder',
  'Classifier': 'classifier',
  'Decoder': 'decoding',
  'DecoderLM': 'transformer',
  'Discriminator': 'gan',
  'EncoderDecoder': 'seq2seq',
  'Generator': 'gan',
  'LMDecoder': 'decoding',
  'Seq2SeqDecoder': 'seq2seq',
  'VAE': 'vae',
  'beam_search': 'beam_search',
  'beam_search_jit': 'beam_search',
  'generate': 'decoding',
  'generate_uncached': 'decoding',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
  if name not in _EXPORTS:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  value = getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
  globals()[name] = value  # found once; later lookups are plain attribute reads
  return value


def __dir__():
  return sorted(set(globals()) | set(_EXPORTS))
