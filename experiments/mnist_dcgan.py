r"""DCGAN on MNIST: self-conditioned on k-means clusters (no labels), non-saturating loss,
batch-norm generator, EMA generator weights.

  python -m launch.main --config=experiments/mnist_classifier.py --workdir=runs/mnist_classifier
  python -m launch.main --config=experiments/mnist_dcgan.py --workdir=runs/mnist_dcgan
  python -m launch.evaluate --workdir=runs/mnist_dcgan    # fid, inception_score, precision, recall
  python -m launch.sample --workdir=runs/mnist_dcgan --mode=interpolate   # or --mode=mix
"""

from genjax.tasks import experiment_config


def get_config():
  c = experiment_config('gan', 'mnist')
  c.data.digits = ()
  c.data.num_train = 0
  c.data.num_test = 0
  c.data.batch_size = 64
  # Self-conditioning (no labels): G and D are conditioned on the image's k-means cluster
  # (100 clusters of 40 principal components; genjax.data.clusters). 0: plain DCGAN.
  c.data.clusters = 100

  c.model.generator.latent_dim = 64
  c.model.generator.widths = (64, 32)  # channels after each 2x upsampling: 7 -> 14 -> 28
  c.model.generator.num_classes = 0  # > 0: class-conditional (see mnist_cdcgan.py)
  c.model.generator.norm = 'batch'  # 'batch' | 'layer' | 'none'
  c.model.discriminator.widths = (64, 128)  # stride-2 convs: 28 -> 14 -> 7
  c.model.discriminator.num_classes = 0
  c.model.discriminator.conditioning = 'projection'
  c.model.num_codes = 0  # > 0: InfoGAN categorical code of that many values (no labels)

  c.loss.kind = 'non_saturating'  # 'non_saturating' | 'hinge' | 'wasserstein'
  c.loss.gp_weight = 0.0  # WGAN-GP gradient penalty weight (10 with 'wasserstein')
  c.loss.r1_gamma = 0.0  # R1 penalty on real data
  c.loss.d_steps = 1  # discriminator updates per generator update
  c.loss.info_weight = 1.0  # InfoGAN: weight of the code-recovery term (with num_codes)
  c.loss.pinned_warn_steps = 1000  # warn when D has won outright this long (divergence)

  c.optim.name = 'adam'  # the generator's optimizer
  c.optim.learning_rate = 2e-4
  c.optim.b1 = 0.5
  c.optim.schedule = 'constant'
  c.d_optim = c.optim.copy_and_resolve_references()  # the discriminator's optimizer

  c.train.ema_decay = 0.999  # generator EMA used for samples and evaluation
  c.train.steps = 10_000  # wall time: results/mnist_dcgan.json
  c.train.log_every = 200
  c.train.eval_every = 2_000  # FID/IS on eval.num_examples samples (needs the classifier)
  c.train.checkpoint_every = 2_000
  c.train.sample_every = 1_000
  # One XLA CPU device: this 28x28 step is faster unsplit (results/throughput.json).
  c.parallel.cpu_devices = 1

  c.eval.classifier_workdir = 'runs/mnist_classifier'
  c.eval.num_samples = 10_000  # generated images scored by FID/IS/precision/recall
  return c
