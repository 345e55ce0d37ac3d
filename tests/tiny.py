"""Tiny versions of the experiments: seconds to train, same code paths."""

from experiments import (
  chitchat,
  fruits_ae,
  multi30k_de_en,
  fruits_vae,
  jsb_frames,
  jsb_voices,
  mnist_ae,
  mnist_classifier,
  mnist_dcgan,
  mnist_diffusion,
  mnist_vae,
  mnist_vit,
  python_code,
  shakespeare_char,
  stdlib_bert,
  stdlib_classify,
)


def _short_run(c, steps):
  """`steps` steps, logging, evaluating and checkpointing every 4, samples every 8."""
  c.optim.warmup_steps = 2
  c.train.steps = steps
  c.train.log_every = 4
  c.train.eval_every = 4
  c.train.checkpoint_every = 4
  c.train.sample_every = 8
  return c


def _shrink(c, steps=8):
  c.data.num_train = 256
  c.data.num_test = 64
  c.data.batch_size = 32
  c.model.widths = (4, 8) if c.data.name != 'fruits' else (4, 8, 8)
  c.model.hidden = (16,)
  c.model.latent_dim = 4
  _short_run(c, steps)
  c.eval.batch_size = 32
  c.eval.num_examples = 64
  return c


def vae(steps=8):
  c = _shrink(mnist_vae.get_config(), steps)
  c.eval.iwae_samples = 8
  c.eval.iwae_batch_size = 32
  c.eval.anomaly_samples = 2
  return c


def ae(steps=8):
  return _shrink(mnist_ae.get_config(), steps)


def fruits_vae_config(steps=8):
  c = _shrink(fruits_vae.get_config(), steps)
  c.data.num_anomaly = 32
  c.eval.iwae_samples = 4
  c.eval.iwae_examples = 32
  c.eval.iwae_batch_size = 32
  c.eval.anomaly_samples = 2
  c.eval.classifier_workdir = ''  # tests that want sample metrics train a classifier
  return c


def fruits_ae_config(steps=8):
  c = _shrink(fruits_ae.get_config(), steps)
  c.data.num_anomaly = 32
  return c


def gan(steps=8, classifier_workdir=''):
  c = mnist_dcgan.get_config()
  c.data.num_train = 256
  c.data.num_test = 64
  c.data.batch_size = 32
  c.data.clusters = 0  # plain DCGAN (self_conditioned_gan sets it)
  c.model.generator.latent_dim = 8
  c.model.generator.widths = (8, 4)
  c.model.discriminator.widths = (4, 8)
  c.train.steps = steps
  c.train.log_every = 4
  c.train.checkpoint_every = 4
  c.train.sample_every = 8
  c.eval.batch_size = 32
  c.eval.num_samples = 64
  c.eval.classifier_workdir = classifier_workdir
  return c


def conditional_gan(steps=8, classifier_workdir=''):
  """`gan` with a class embedding in G and a projection discriminator (as mnist_cdcgan)."""
  c = gan(steps, classifier_workdir)
  c.model.generator.num_classes = 10
  c.model.discriminator.num_classes = 10
  return c


def info_gan(steps=8, classifier_workdir=''):
  """`gan` with a 10-valued InfoGAN code: Q head in D, code one-hot in G's latent."""
  c = gan(steps, classifier_workdir)
  c.model.num_codes = 10
  return c


def self_conditioned_gan(steps=8, classifier_workdir=''):
  """`gan` conditioned on 8 k-means clusters of its training images (no labels)."""
  c = gan(steps, classifier_workdir)
  c.data.clusters = 8
  return c


def diffusion(steps=8, dropout=0.1):
  """A class-conditional U-Net 8 wide on one level of 2x2 patches (14 x 14) with label
  dropout, dropout and stratified times on (every per-example draw of the family); 4
  guided DDIM steps.
  Small to compile: a two-level U-Net on whole pixels doubles every test's compile and
  step time; the contract tests shrink the experiments alike, and tests/test_unet.py
  covers the levels."""
  c = mnist_diffusion.get_config()
  c.data.num_train = 256
  c.data.num_test = 64
  c.data.batch_size = 32
  c.model.channels = 8
  c.model.channel_mults = (1,)
  c.model.patch_size = 2
  c.model.num_res_blocks = 1
  c.model.attention_resolutions = ()
  c.model.num_heads = 2
  c.model.dropout = dropout
  c.diffusion.stratified_times = True  # times from batch positions: strategies must agree
  c.sample.steps = 4
  _short_run(c, steps)
  c.optim.learning_rate = 2e-3
  c.eval.batch_size = 32
  c.eval.num_examples = 64
  c.eval.num_samples = 64
  c.eval.timed_samples = 4
  c.eval.classifier_workdir = ''
  return c


def classifier(steps=8):
  c = mnist_classifier.get_config()
  c.data.num_train = 256
  c.data.num_test = 64
  c.data.batch_size = 32
  c.model.widths = (4, 8)
  c.model.hidden = 16
  _short_run(c, steps)  # its sample_every draws nothing: a classifier has no views
  c.eval.batch_size = 32
  return c


def classifier_augmented(generator_workdir, fraction=0.5, steps=8):
  """`classifier` trained on samples of the GAN in `generator_workdir` (mnist_augment:gan)."""
  c = classifier(steps)
  c.augment.generator_workdir = generator_workdir
  c.augment.fraction = fraction
  return c


def vit(steps=8, dropout=0.1):
  """A 1-layer ViT 16 wide on 7x7 MNIST patches, with crops, flips, label smoothing and
  dropout: every per-example draw of the family."""
  c = mnist_vit.get_config()
  c.data.num_train = 256
  c.data.num_test = 64
  c.data.batch_size = 32
  c.model.width = 16
  c.model.num_layers = 1
  c.model.num_heads = 2
  c.model.dropout = dropout
  c.augment.flip = True  # not for digits, but here to cover the flip's draws
  _short_run(c, steps)
  c.eval.batch_size = 32
  c.eval.num_examples = 64
  return c


def _shrink_lm(c, steps):
  c.data.max_train_chars = 20_000
  c.data.num_val_windows = 16
  c.data.batch_size = 8
  c.model.block_size = 16
  c.model.num_layers = 2
  c.model.num_heads = 2
  c.model.width = 16
  _short_run(c, steps)
  c.eval.batch_size = 8
  c.sample.max_new_tokens = 20
  return c


def lm(steps=8, dropout=0.1):
  """Tiny Shakespeare, characters (as shakespeare_char), with dropout on."""
  c = _shrink_lm(shakespeare_char.get_config('cpu'), steps)
  c.model.dropout = dropout
  return c


def code_lm(steps=8):
  """A few stdlib files, BPE (as python_code); parse_rate on 2 headers."""
  c = _shrink_lm(python_code.get_config(), steps)
  c.data.max_files = 40
  c.data.vocab_size = 512  # byte fallback needs 259 + the characters
  c.eval.parse_samples = 2
  c.eval.parse_max_new_tokens = 8
  return c


def chat(steps=8):
  """60 chitchat conversations, a 512-piece BPE, a 2-layer GPT over 16 tokens of context;
  distinct-n of 2 sampled replies."""
  c = chitchat.get_config()
  _short_run(c, steps)
  c.data.max_conversations = 60
  c.data.vocab_size = 512  # byte fallback needs 259 + the chat symbols + the characters
  c.data.num_val_windows = 16
  c.data.batch_size = 8
  c.model.block_size = 16
  c.model.num_layers = 2
  c.model.num_heads = 2
  c.model.width = 16
  c.train.steps_per_call = 1
  c.eval.batch_size = 8
  c.eval.num_examples = 16
  c.eval.reply_samples = 2
  c.eval.reply_max_new_tokens = 6
  c.sample.max_new_tokens = 20
  return c


def bert(steps=8, dropout=0.1):
  """A few stdlib files, BPE, a 1-layer encoder predicting 2 of each 16 tokens, dropout on."""
  c = stdlib_bert.get_config()
  _short_run(c, steps)
  c.data.max_files = 40
  c.data.max_train_chars = 20_000
  c.data.vocab_size = 512  # byte fallback needs 259 + the characters
  c.data.num_val_windows = 16
  c.data.block_size = 16
  c.data.batch_size = 8
  c.model.num_layers = 1
  c.model.num_heads = 2
  c.model.width = 16
  c.model.dropout = dropout
  c.eval.batch_size = 8
  c.eval.num_examples = 16
  return c


def text_classifier(steps=8, dropout=0.1):
  """3 module families of the stdlib, 96 training functions of 32 tokens, dropout on."""
  c = stdlib_classify.get_config()
  _short_run(c, steps)
  c.data.num_classes = 3
  c.data.num_train = 96
  c.data.num_test = 16
  c.data.vocab_size = 512
  c.data.max_length = 32
  c.data.batch_size = 16
  c.model.num_layers = 1
  c.model.num_heads = 2
  c.model.width = 16
  c.model.dropout = dropout
  c.optim.learning_rate = 3e-3
  c.eval.batch_size = 16
  c.eval.num_examples = 32
  return c


def seq2seq(steps=8, dropout=0.1, one_shape=False):
  """Multi30k de->en, 200 pairs, a 1+1-layer encoder-decoder with dropout, token budget;
  `one_shape`: every batch padded to 64 tokens (one compile), for tests that check what
  the batch shape does not touch (precision, remat)."""
  c = multi30k_de_en.get_config('cpu')
  _short_run(c, steps)
  c.data.num_train = 200
  c.data.num_test = 8
  c.data.vocab_size = 512
  c.data.tokens_per_batch = 512
  # Two bucket lengths (32, 64), two row counts: the token budget still varies the batch
  # shape, and each shape is one more compile of every step under test.
  c.data.length_multiple = 64 if one_shape else 32
  c.model.num_encoder_layers = 1
  c.model.num_decoder_layers = 1
  c.model.num_heads = 2
  c.model.width = 16
  c.model.dropout = dropout
  c.loss.word_dropout = dropout  # per example too: 'pmap' == 'jit' == one device
  c.loss.source_mlm = 0.5  # and so are its source masks
  c.loss.bag_of_words = 0.5  # and its auxiliary losses sum as the main one does
  c.eval.bleu_examples = 4
  c.eval.batch_size = 8
  c.eval.beam_size = 2
  c.eval.max_length_a = 0.0
  c.eval.max_length_b = 4
  return c


def piano_roll(steps=8, dropout=0.1):
  """Quarter-note chorales, a 1-layer Transformer with a NADE of 8 units, transposed."""
  c = jsb_frames.get_config()
  _short_run(c, steps)
  c.data.batch_size = 8
  c.data.transpose = 3  # per example too: 'pmap' == 'jit' == one device
  c.model.num_layers = 1
  c.model.num_heads = 2
  c.model.width = 16
  c.model.nade_hidden = 8
  c.model.dropout = dropout
  c.sample.num_pieces = 2
  c.sample.steps = 8
  c.eval.batch_size = 8
  c.eval.num_examples = 16
  return c


def voices(steps=8, dropout=0.1):
  """The four voices in windows of 32 tokens, a 1-layer GPT, transposed."""
  c = jsb_voices.get_config()
  _short_run(c, steps)
  c.data.batch_size = 8
  c.data.block_size = 32  # a multiple of 8 * data.start_every
  c.data.transpose = 3
  c.model.num_layers = 1
  c.model.num_heads = 2
  c.model.width = 16
  c.model.dropout = dropout
  c.train.steps_per_call = 1
  c.sample.num_pieces = 2
  c.sample.steps = 8
  c.eval.batch_size = 8
  c.eval.num_examples = 16
  c.eval.sample_pieces = 2
  c.eval.sample_steps = 8
  return c


def get_config(name='vae'):
  """For the command line: --config=tests/tiny.py:vae (or ae, fruits_vae, fruits_ae)."""
  return {
    'vae': vae,
    'ae': ae,
    'fruits_vae': fruits_vae_config,
    'fruits_ae': fruits_ae_config,
    'gan': gan,
    'conditional_gan': conditional_gan,
    'diffusion': diffusion,
    'info_gan': info_gan,
    'classifier': classifier,
    'vit': vit,
    'lm': lm,
    'code_lm': code_lm,
    'chat': chat,
  }[name]()
