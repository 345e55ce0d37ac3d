r"""DCGAN on Fashion-MNIST: the MNIST recipe on clothes (10 article classes).

python -m launch.main --config=experiments/fashion_mnist_classifier.py \
    --workdir=runs/fashion_mnist_classifier
python -m launch.main --config=experiments/fashion_mnist_dcgan.py --workdir=runs/fashion_mnist_dcgan
python -m launch.evaluate --workdir=runs/fashion_mnist_dcgan   # fid, inception_score, ...
python -m launch.sample --workdir=runs/fashion_mnist_dcgan --mode=mix
"""

from experiments import mnist_dcgan


def get_config():
  c = mnist_dcgan.get_config()
  c.data.name = 'fashion-mnist'
  c.data.clusters = 0  # plain DCGAN: self-conditioning is measured on MNIST only (README)
  c.eval.classifier_workdir = 'runs/fashion_mnist_classifier'
  return c
