"""The names `genjax.models` exports, each with the module that defines it (imported on
first use by the package's __init__). Adding a model is a line here; this table is not
code a result record depends on (bench/records.py), so the line stales no record."""

EXPORTS = {
  'Autoencoder': 'autoencoder',
  'Classifier': 'classifier',
  'Decoder': 'decoding',
  'DecoderLM': 'transformer',
  'Discriminator': 'gan',
  'Encoder': 'encoder',
  'EncoderDecoder': 'seq2seq',
  'Generator': 'gan',
  'LMDecoder': 'decoding',
  'PianoRollTransformer': 'piano_roll',
  'Seq2SeqDecoder': 'seq2seq',
  'UNet': 'unet',
  'VAE': 'vae',
  'ViT': 'vit',
  'beam_search': 'beam_search',
  'beam_search_jit': 'beam_search',
  'generate': 'decoding',
  'generate_uncached': 'decoding',
}
