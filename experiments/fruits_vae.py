r"""VAE on procedural fruits (32x32 RGB, generated offline).

python -m launch.main --config=experiments/fruits_vae.py --workdir=runs/fruits_vae
python -m launch.evaluate --workdir=runs/fruits_vae   # anomaly_auroc: blue apples
python -m launch.main --config=experiments/fruits_classifier.py --workdir=runs/fruits_classifier
python -m launch.evaluate --workdir=runs/fruits_vae   # and fid, inception_score of samples
python -m launch.sample --workdir=runs/fruits_vae --mode=interpolate
"""

from genjax.tasks import experiment_config


def get_config():
  c = experiment_config('vae', 'fruits')
  c.data.image_size = 32
  c.data.num_train = 0  # 0 = the default 50,000 generated images
  c.data.num_test = 0  # 0 = 10,000
  c.data.num_anomaly = 0  # 0 = 2,000 blue apples
  c.data.batch_size = 128

  c.model.arch = 'conv'
  c.model.latent_dim = 32
  c.model.widths = (16, 32, 64)  # stride-2 conv channels: 32 -> 16 -> 8 -> 4
  c.model.hidden = (256,)  # dense layers between conv features and z
  c.model.likelihood = 'discretized_gaussian'  # colour: Gaussian integrated over 8-bit bins

  c.loss.kl_weight = 1.0

  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 200
  c.optim.end_learning_rate_factor = 0.05
  c.train.steps = 3_000  # wall time: results/fruits_vae.json
  c.train.log_every = 100
  c.train.eval_every = 1_000
  c.train.checkpoint_every = 1_000
  c.train.sample_every = 500

  c.eval.iwae_samples = 100
  c.eval.iwae_examples = 1_000
  c.eval.iwae_batch_size = 100
  c.eval.anomaly_samples = 16
  # Once trained, the fruits classifier scores 10,000 samples as it does the GANs' and the
  # diffusion model's (results/fruits_*.json); without it evaluation skips those figures.
  c.eval.classifier_workdir = 'runs/fruits_classifier'
  c.eval.num_samples = 10_000
  return c
