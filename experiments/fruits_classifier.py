r"""The procedural-fruits evaluation classifier (5 fruits) behind FID / IS of fruits_dcgan.

python -m launch.main --config=experiments/fruits_classifier.py --workdir=runs/fruits_classifier
python -m launch.evaluate --workdir=runs/fruits_classifier     # test accuracy
"""

from experiments import mnist_classifier


def get_config():
  c = mnist_classifier.get_config()
  c.data.name = 'fruits'
  c.data.image_size = 32
  c.data.num_anomaly = 0  # 0 = 2,000 blue apples (unused here)
  c.model.num_classes = 5  # apple, banana, orange, grape, pear
  c.train.steps = 1_500
  return c
