r"""A Vision Transformer on Fashion-MNIST: mnist_vit's model, with left-right flips.

  python -m launch.main --config=experiments/fashion_mnist_vit.py \
      --workdir=runs/fashion_mnist_vit
  python -m launch.evaluate --workdir=runs/fashion_mnist_vit     # test accuracy

As the GAN metrics' feature network, in place of the conv classifier:

  python -m launch.main --config=experiments/fashion_mnist_dcgan.py \
      --workdir=runs/fashion_mnist_dcgan --config.eval.classifier_workdir=runs/fashion_mnist_vit
"""

from experiments import mnist_vit


def get_config():
  c = mnist_vit.get_config()
  c.data.name = 'fashion-mnist'
  c.augment.flip = True  # a mirrored shirt is still a shirt
  return c
