r"""Class-conditional diffusion on procedural fruits (32x32 RGB, 5 kinds), DDIM sampling
with guidance 1.5.

  python -m launch.main --config=experiments/fruits_classifier.py --workdir=runs/fruits_classifier
  python -m launch.main --config=experiments/fruits_diffusion.py --workdir=runs/fruits_diffusion
  python -m launch.evaluate --workdir=runs/fruits_diffusion   # fid, inception_score, class shares
  python -m launch.sample --workdir=runs/fruits_diffusion --class=0   # one kind of fruit
  python -m launch.sample --workdir=runs/fruits_diffusion --mode=inpaint   # right halves filled
"""

from experiments import mnist_diffusion


def get_config():
  c = mnist_diffusion.get_config()
  c.data.name = 'fruits'
  c.data.image_size = 32
  c.data.num_anomaly = 0  # unused here; the dataset loader reads it
  c.model.num_classes = 5
  c.model.attention_resolutions = (8,)  # 32 -> 16 -> 8: attention on the 8x8 maps
  # 32x32x3 steps are slower than MNIST's: fewer of them.
  # Under 10 minutes of launch.main on a two-core CPU, the README's first job: at 1,100
  # steps it took 11 min 53 s (the issue 19 notes), at about 0.56 s a step.
  c.train.steps = 850
  c.train.eval_every = 850
  c.train.sample_every = 425
  c.eval.classifier_workdir = 'runs/fruits_classifier'
  c.sample.guidance_interval = (0.0, 1.0)  # guided at every step, as recorded
  return c
