r"""One-class MNIST anomaly detection: an autoencoder trained on one digit only.

The test set's images of that digit are normal, all others anomalous; the anomaly score
is the reconstruction error. The standard protocol (Ruff et al. 2018, Deep SVDD) reports
the mean AUROC over the ten one-class problems:

  for d in 0 1 2 3 4 5 6 7 8 9; do
    python -m launch.main --config=experiments/mnist_anomaly_ae.py --workdir=runs/oneclass_$d \
        --config.data.digits="($d,)"
    python -m launch.evaluate --workdir=runs/oneclass_$d
  done
"""

from experiments import mnist_ae


def get_config():
  c = mnist_ae.get_config()
  c.data.digits = (0,)
  c.data.noise = 'none'
  c.data.noise_level = 0.0
  c.model.widths = (16, 32)
  c.model.latent_dim = 16  # a narrow code: normal digits fit through it, others do not
  # ~32 epochs of one digit (~6,000 images); wall time: results/one_class_mnist.json
  c.train.steps = 1_500
  c.optim.warmup_steps = 100
  c.train.eval_every = 500
  c.train.checkpoint_every = 500
  c.train.sample_every = 1_500
  return c
