"""Pure Flax linen models; ``models`` imports nothing of genjax but ``models.layers``."""

from genjax.models.autoencoder import Autoencoder
from genjax.models.beam_search import beam_search, beam_search_jit
from genjax.models.classifier import Classifier
from genjax.models.decoding import Decoder, LMDecoder, generate, generate_uncached
from genjax.models.gan import Discriminator, Generator
from genjax.models.seq2seq import EncoderDecoder, Seq2SeqDecoder
from genjax.models.transformer import DecoderLM
from genjax.models.vae import VAE

__all__ = [
  'Autoencoder',
  'Classifier',
  'Decoder',
  'DecoderLM',
  'Discriminator',
  'EncoderDecoder',
  'Generator',
  'LMDecoder',
  'Seq2SeqDecoder',
  'VAE',
  'beam_search',
  'beam_search_jit',
  'generate',
  'generate_uncached',
]
