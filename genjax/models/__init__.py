"""Pure Flax linen models; ``models`` imports nothing of genjax but ``models.layers``.

`from genjax.models import VAE` imports only the module that defines VAE (PEP 562; the
names are in `registry.py`), so a program loads the models it uses and no others, and a
result record (bench/records.py follows `_EXPORTS`) holds only the models it ran.
"""

import importlib

from genjax.models.registry import EXPORTS as _EXPORTS

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
  if name not in _EXPORTS:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  value = getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
  globals()[name] = value  # found once; later lookups are plain attribute reads
  return value


def __dir__():
  return sorted(set(globals()) | set(_EXPORTS))
