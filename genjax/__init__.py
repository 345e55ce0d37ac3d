"""genjax: a JAX research framework for generative models.

    from genjax.models import VAE, Autoencoder
    config, model, params = genjax.load(workdir)
"""

__version__ = '0.1.0'


def load(workdir: str, step: int | None = None):
  """Restores a trained experiment: (config, model, params). See genjax.train.restore."""
  from genjax.train import restore  # pylint: disable=import-outside-toplevel
  return restore.load(workdir, step)
