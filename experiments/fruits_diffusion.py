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
  # 32x32x3 steps are slower than MNIST's: fewer of them. The README's first job, so under
  # 10 minutes of launch.main on a two-core CPU: 850 steps took 9 min 3.7 s in the record
  # (FID 27.85); 1,100 steps took 11 min 53 s and scored FID 14.96 (record e3fa6b5).
  c.train.steps = 850
  c.train.eval_every = 850
  c.train.sample_every = 425
  c.eval.classifier_workdir = 'runs/fruits_classifier'
  c.sample.guidance_interval = (0.0, 1.0)  # guided at every step, as recorded
  return c
