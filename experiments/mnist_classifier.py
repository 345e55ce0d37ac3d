r"""The MNIST evaluation classifier: its features define FID, its softmax the Inception
Score, for the GAN experiments (eval.classifier_workdir points here).

  python -m launch.main --config=experiments/mnist_classifier.py --workdir=runs/mnist_classifier
  python -m launch.evaluate --workdir=runs/mnist_classifier     # test accuracy
"""

from genjax.tasks import experiment_config


def get_config():
  c = experiment_config('classifier', 'mnist')
  c.data.digits = ()
  c.data.num_train = 0  # 0 = all 60,000; the augmentation experiment uses 1,000
  c.data.num_test = 0
  c.data.batch_size = 128

  c.model.num_classes = 10
  c.model.widths = (16, 32)  # 3x3 conv + 2x2 max-pool per width
  c.model.hidden = 128  # the feature size of FID and precision/recall
  c.model.dropout = 0.3

  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 100
  c.train.steps = 2_000  # wall time: results/mnist_classifier.json
  c.train.log_every = 200
  c.train.eval_every = 1_000
  c.train.checkpoint_every = 1_000
  c.train.sample_every = 0  # a classifier draws no pictures

  # Synthetic training data (mnist_augment.py): off here.
  c.augment.generator_workdir = ''
  return c
