r"""German -> English translation on Multi30k (task 1) with an encoder-decoder Transformer.

The default follows the best small-model recipe for Multi30k (Wu et al. 2021's
transformer_tiny, 41.02 BLEU en->de): 4+4 layers, 128 wide, feed-forward 256, 4 heads,
one embedding for everything, dropout 0.3, peak learning rate 5e-3 after 2,000 warmup
steps, 4,096 tokens a batch, 8,000 updates, beam 5; text lowercased and Moses-tokenized,
a joint BPE. It is sized for an accelerator. `:cpu` trains a model of the same shape for
fewer, smaller batches, in under an hour on 2 CPU cores.

  python -m launch.main --config=experiments/multi30k_de_en.py:cpu --workdir=runs/de_en
  python -m launch.evaluate --workdir=runs/de_en        # BLEU, sacreBLEU, chrF on test_2016_flickr
  python -m launch.sample --workdir=runs/de_en --input="Ein Mann fährt Fahrrad."
"""

from genjax.config import ConfigError
from genjax.tasks import experiment_config

SIZES = ('default', 'cpu')


def translation_config(source_lang: str, target_lang: str, size: str):
  size = size or 'default'
  if size not in SIZES:
    raise ConfigError(f'the Multi30k sizes are {SIZES}, not {size!r}.')
  c = experiment_config('seq2seq', 'multi30k')
  c.data.source_lang, c.data.target_lang = source_lang, target_lang
  c.data.lowercase = True
  c.data.moses = True
  c.data.vocab_size = 8000
  c.data.max_length = 64  # tokens per side; the longest training pair has fewer
  c.data.tokens_per_batch = 4096
  c.model.num_encoder_layers = 4
  c.model.num_decoder_layers = 4
  c.model.width = 128
  c.model.mlp_ratio = 2
  c.model.num_heads = 4
  c.model.dropout = 0.3
  c.model.positions = 'sinusoidal'
  c.model.share_embeddings = True
  c.loss.label_smoothing = 0.1
  c.optim.learning_rate = 5e-3
  c.optim.warmup_steps = 2000
  c.optim.b2 = 0.98
  c.train.steps = 8000
  c.train.eval_every = 1000
  c.train.checkpoint_every = 500
  c.train.keep_checkpoints = 10
  c.eval.split = 'test_2016_flickr'
  c.eval.beam_size = 5
  c.eval.alpha = 0.6
  c.sample.input = 'Ein Mann fährt Fahrrad.' if source_lang == 'de' else 'A man rides a bike.'
  if size == 'cpu':
    c.data.tokens_per_batch = 2048
    c.optim.warmup_steps = 1000
    c.train.steps = 6000
    c.train.eval_every = 500
    c.train.checkpoint_every = 250
  return c


def get_config(size: str = 'default'):
  return translation_config('de', 'en', size)
