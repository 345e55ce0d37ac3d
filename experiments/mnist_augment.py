r"""GAN data augmentation: a classifier on 1,000 labelled MNIST images, with and without
samples of a trained class-conditional GAN (experiments/mnist_cdcgan.py).

  python -m launch.main --config=experiments/mnist_cdcgan.py --workdir=runs/mnist_cdcgan
  python -m launch.main --config=experiments/mnist_augment.py:real --workdir=runs/augment/real
  python -m launch.main --config=experiments/mnist_augment.py:gan --workdir=runs/augment/gan
  python -m launch.evaluate --workdir=runs/augment/gan      # accuracy on all 10,000 test images

or all of it at once, with a results table:

  python -m bench.augmentation --workdir=runs/augment --generator_workdir=runs/mnist_cdcgan

'real' trains on the 1,000 images alone; 'gan' replaces each training example, with
probability augment.fraction, by a generated image of a random class (labelled with it).
"""

from experiments import mnist_classifier

VARIANTS = ('real', 'gan')
NUM_LABELLED = 1_000  # the first 1,000 training images: about 100 per class
GENERATOR_WORKDIR = 'runs/mnist_cdcgan'
FRACTION = 0.5  # share of each batch drawn from the generator


def get_config(arg: str = 'real'):
  if arg not in VARIANTS:
    raise ValueError(
      f'mnist_augment.py:{arg} is not a variant; choose one of {VARIANTS} '
      '(e.g. --config=experiments/mnist_augment.py:gan).'
    )
  c = mnist_classifier.get_config()
  c.data.num_train = NUM_LABELLED
  c.data.num_test = 0  # evaluated on all 10,000 test images
  c.train.steps = 2_000
  c.train.log_every = 200
  c.train.eval_every = 500
  c.train.checkpoint_every = 1_000
  c.optim.warmup_steps = 100
  if arg == 'gan':
    c.augment.generator_workdir = GENERATOR_WORKDIR
    c.augment.fraction = FRACTION
  return c
