r"""Convolutional autoencoder on procedural fruits; blue apples are the anomalies.

python -m launch.main --config=experiments/fruits_ae.py --workdir=runs/fruits_ae
python -m launch.evaluate --workdir=runs/fruits_ae    # anomaly_auroc, mse, pca_mse
"""

from genjax.tasks import experiment_config


def get_config():
  c = experiment_config('autoencoder', 'fruits')
  c.data.image_size = 32
  c.data.num_train = 0  # 0 = 50,000 generated images
  c.data.num_test = 0
  c.data.num_anomaly = 0
  c.data.noise = 'none'
  c.data.noise_level = 0.0
  c.data.batch_size = 128

  c.model.arch = 'conv'
  c.model.latent_dim = 32
  c.model.widths = (16, 32, 64)  # stride-2 conv channels: 32 -> 16 -> 8 -> 4
  c.model.hidden = (256,)  # dense layers between conv features and z

  c.loss.reconstruction = 'mse'

  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 200
  c.optim.end_learning_rate_factor = 0.05
  c.train.steps = 3_000  # wall time: results/fruits_ae.json
  c.train.log_every = 100
  c.train.eval_every = 1_000
  c.train.checkpoint_every = 1_000
  c.train.sample_every = 500
  return c
