r"""Class-conditional DCGAN on MNIST: class embedding in G, projection discriminator.

python -m launch.main --config=experiments/mnist_cdcgan.py --workdir=runs/mnist_cdcgan
python -m launch.sample --workdir=runs/mnist_cdcgan --class=7        # sevens only
python -m launch.evaluate --workdir=runs/mnist_cdcgan   # + label_accuracy of the samples
"""

from experiments import mnist_dcgan


def get_config():
  c = mnist_dcgan.get_config()
  c.data.clusters = 0  # conditioned on the labels instead
  c.model.generator.num_classes = 10
  c.model.discriminator.num_classes = 10
  c.model.discriminator.conditioning = 'projection'  # Miyato & Koyama 2018
  c.train.steps = 6_000  # labels make it easier: fewer steps (results/mnist_cdcgan.json)
  return c
