r"""The Fashion-MNIST evaluation classifier behind FID / IS of fashion_mnist_dcgan.

python -m launch.main --config=experiments/fashion_mnist_classifier.py \
    --workdir=runs/fashion_mnist_classifier
python -m launch.evaluate --workdir=runs/fashion_mnist_classifier     # test accuracy
"""

from experiments import mnist_classifier


def get_config():
  c = mnist_classifier.get_config()
  c.data.name = 'fashion-mnist'
  c.train.steps = 3_000  # clothes are harder than digits
  return c
