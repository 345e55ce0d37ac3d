"""Pure Flax linen models; ``models`` imports nothing of genjax but ``models.layers``."""
from genjax.models.autoencoder import Autoencoder
from genjax.models.classifier import Classifier
from genjax.models.gan import Discriminator, Generator
from genjax.models.vae import VAE

__all__ = ['Autoencoder', 'Classifier', 'Discriminator', 'Generator', 'VAE']
