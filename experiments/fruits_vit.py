r"""A Vision Transformer on procedural fruits (32x32 RGB, 5 kinds): 8x8 patches of 4x4.

  python -m launch.main --config=experiments/fruits_vit.py --workdir=runs/fruits_vit
  python -m launch.evaluate --workdir=runs/fruits_vit     # test accuracy

As the GAN metrics' feature network, in place of the conv classifier:

  python -m launch.main --config=experiments/fruits_dcgan.py --workdir=runs/fruits_dcgan \
      --config.eval.classifier_workdir=runs/fruits_vit
"""

from experiments import mnist_vit


def get_config():
  c = mnist_vit.get_config()
  c.data.name = 'fruits'
  c.data.image_size = 32
  c.data.num_anomaly = 0  # 0 = 2,000 blue apples (unused here)
  c.model.num_classes = 5  # apple, banana, orange, grapes, pear
  c.augment.flip = True  # fruits are drawn at random angles: a mirror image is a fruit
  c.train.steps = 2_800  # 65 tokens, not 50: each step costs ~1.4x mnist_vit's
  return c
