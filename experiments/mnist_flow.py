r"""Flow matching on MNIST: the mnist_diffusion U-Net learns the velocity of the straight
path from each image to its noise (rectified flow), class-conditional with guidance 1.5
between t = 0.85 and 0.4 (as mnist_diffusion); samples integrate the ODE with 20 Heun steps
(39 model calls).

  python -m launch.main --config=experiments/mnist_classifier.py --workdir=runs/mnist_classifier
  python -m launch.main --config=experiments/mnist_flow.py --workdir=runs/mnist_flow
  python -m launch.evaluate --workdir=runs/mnist_flow   # fid, inception_score, label_accuracy
  python -m launch.sample --workdir=runs/mnist_flow --class=3 --sampler=euler --steps=10
  python -m launch.sample --workdir=runs/mnist_flow --mode=trajectory   # straight paths
  python -m bench.diffusion_steps --workdir=runs/mnist_flow --samplers=euler,heun
"""

from experiments import mnist_diffusion


def get_config():
  c = mnist_diffusion.get_config()
  c.diffusion.objective = 'flow'  # the schedule is unused: the path is (1 - t) x + t eps
  c.sample.sampler = 'heun'  # second order; its last step is Euler (t = 0 is singular)
  c.sample.steps = 20
  c.sample.eta = 0.0
  c.sample.clip_x0 = False  # integrate the learned ODE as it is
  return c
