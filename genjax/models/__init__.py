"""Pure Flax linen models; ``models`` imports nothing of genjax but ``models.layers``."""

from genjax.models.autoencoder import Autoencoder
from genjax.models.classifier import Classifier
from genjax.models.decoding import Decoder, LMDecoder, generate, generate_uncached
from genjax.models.gan import Discriminator, Generator
from genjax.models.transformer import DecoderLM
from genjax.models.vae import VAE

__all__ = [
  'Autoencoder',
  'Classifier',
  'Decoder',
  'DecoderLM',
  'Discriminator',
  'Generator',
  'LMDecoder',
  'VAE',
  'generate',
  'generate_uncached',
]
