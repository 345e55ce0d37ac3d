r"""VAE on dynamically binarized MNIST; test NLL by importance sampling (IWAE, k=1000).

The default is the one-stochastic-layer MLP VAE of the likelihood literature (Burda et
al. 2015: two deterministic hidden layers, 50 latents; ours 512 wide), trained for 120,000
steps (256 epochs) and scored on the 10,000 test images with k=1000 (results/mnist_vae.json
has the figures and wall times). The convolutional variant is one override away:
--config.model.arch=conv.

  python -m launch.main --config=experiments/mnist_vae.py --workdir=runs/mnist_vae
  python -m launch.evaluate --workdir=runs/mnist_vae      # nll, elbo in nats
  python -m launch.sample --workdir=runs/mnist_vae --mode=interpolate
  python -m launch.sweep --config=experiments/mnist_vae.py --workdir=runs/mnist_vae_sweep \
      --parallel=2 --config.train.steps=20000        # get_sweep(): 2 learning rates x 2 seeds
"""

from genjax.tasks import experiment_config
from genjax.sweeps import product


def get_config():
  c = experiment_config('vae', 'mnist')
  c.data.binarize = True  # train on fresh Bernoulli bits each step; test bits fixed once
  c.data.digits = ()  # () = all digits; (d,) = one-class training for anomaly detection
  c.data.num_train = 0  # 0 = all; smaller for quick tries
  c.data.num_test = 0
  c.data.batch_size = 128

  c.model.arch = 'mlp'  # 'mlp' | 'conv'
  c.model.latent_dim = 50
  c.model.widths = (32, 64)  # conv only: channels of the stride-2 convs (28 -> 14 -> 7)
  c.model.hidden = (512, 512)  # dense layers between pixels/conv features and z
  c.model.likelihood = 'bernoulli'

  c.loss.kl_weight = 1.0  # beta of a beta-VAE; 1 is the ELBO

  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 500
  c.optim.end_learning_rate_factor = 0.05
  c.train.steps = 120_000  # wall time: results/mnist_vae.json
  # One XLA CPU device: this small MLP's step is faster unsplit (results/throughput.json).
  c.parallel.cpu_devices = 1
  c.train.log_every = 1_000
  c.train.eval_every = 10_000
  c.train.checkpoint_every = 10_000
  c.train.sample_every = 10_000

  c.eval.iwae_samples = 1000  # importance samples per test image for the NLL
  c.eval.iwae_examples = 0  # 0 = the whole test set
  c.eval.iwae_batch_size = 100
  c.eval.anomaly_samples = 16  # importance samples in the anomaly score
  return c


def get_sweep():
  """Learning rate x seed: does the default rate win, and by more than seed noise?"""
  return product(**{'optim.learning_rate': [1e-3, 3e-4], 'seed': [0, 1]})
