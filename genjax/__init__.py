"""genjax: a JAX research framework for generative models.

from genjax.models import VAE, Autoencoder
config, model, variables = genjax.load(workdir)
"""

__version__ = '0.1.0'


def load(workdir: str, step: int | None = None):
  """Restores a trained experiment: (config, model, variables). See genjax.api."""
  from genjax import api  # pylint: disable=import-outside-toplevel (keeps `import genjax` light)

  return api.load(workdir, step)
