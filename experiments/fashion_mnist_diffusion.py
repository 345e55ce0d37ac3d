r"""Class-conditional diffusion on Fashion-MNIST: the MNIST recipe on clothes (10 classes).

  python -m launch.main --config=experiments/fashion_mnist_classifier.py \
      --workdir=runs/fashion_mnist_classifier
  python -m launch.main --config=experiments/fashion_mnist_diffusion.py \
      --workdir=runs/fashion_mnist_diffusion
  python -m launch.evaluate --workdir=runs/fashion_mnist_diffusion   # fid, inception_score, ...
  python -m launch.sample --workdir=runs/fashion_mnist_diffusion --class=7 --guidance=3  # sneakers
"""

from experiments import mnist_diffusion


def get_config():
  c = mnist_diffusion.get_config()
  c.data.name = 'fashion-mnist'
  c.eval.classifier_workdir = 'runs/fashion_mnist_classifier'
  return c
