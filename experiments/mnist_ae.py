r"""Denoising convolutional autoencoder on MNIST (Gaussian noise, sigma = 0.5).

python -m launch.main --config=experiments/mnist_ae.py --workdir=runs/mnist_ae
python -m launch.evaluate --workdir=runs/mnist_ae    # mse, psnr, pca_mse, noisy/denoised psnr
python -m launch.sample --workdir=runs/mnist_ae --mode=denoise
"""

from genjax.tasks import experiment_config


def get_config():
  c = experiment_config('autoencoder', 'mnist')
  c.data.digits = ()  # () = all digits; (d,) = one-class (see mnist_anomaly_ae.py)
  c.data.num_train = 0
  c.data.num_test = 0
  c.data.noise = 'gaussian'  # 'none' | 'gaussian' | 'mask': corruption of the input
  c.data.noise_level = 0.5  # Gaussian sigma, or masking probability
  c.data.batch_size = 128

  c.model.arch = 'conv'  # 'conv' | 'mlp'
  c.model.latent_dim = 32
  c.model.widths = (32, 64)
  c.model.hidden = (256,)  # dense layers between conv features and z

  c.loss.reconstruction = 'bce'  # 'bce' (pixels as Bernoulli means) | 'mse'

  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 200
  c.optim.end_learning_rate_factor = 0.05
  c.train.steps = 3_000
  c.train.log_every = 200
  c.train.eval_every = 1_000
  c.train.checkpoint_every = 1_000
  c.train.sample_every = 1_000
  return c
