r"""Convolutional VAE on Fashion-MNIST (grey levels as Bernoulli probabilities).

python -m launch.main --config=experiments/fashion_mnist_vae.py --workdir=runs/fashion_vae
"""

from experiments import mnist_vae


def get_config():
  c = mnist_vae.get_config()
  c.data.name = 'fashion-mnist'
  # Fashion-MNIST is not a binary image set: the decoder's Bernoulli likelihood is used
  # on the grey levels directly (continuous Bernoulli would be the normalised variant).
  c.data.binarize = False
  c.train.steps = 20_000
  return c
