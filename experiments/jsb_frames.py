r"""Bach chorales as piano rolls: a Transformer over time steps with a NADE over each step's
88 keys, on the polyphonic-music benchmark of Boulanger-Lewandowski et al. (2012).

The quarter-note split (229 train, 76 validation, 77 test chorales); one example is one
whole chorale (the longest has 160 steps, the model's positions). The loss and the
reported figure are the negative log-likelihood per time step in nats, summed over the
88 piano keys (genjax/tasks/piano_roll.py). The published figures train without
transposition, and so does this config (data.transpose=0).

  python -m launch.main --config=experiments/jsb_frames.py --workdir=runs/jsb
  python -m launch.evaluate --workdir=runs/jsb     # valid_nll_per_step, test_nll_per_step
  python -m launch.sample --workdir=runs/jsb --mode=compose --num=4   # MIDI, WAV, PNG

Independent Bernoullis per key in place of the NADE, the literature's weaker baseline:

  python -m launch.main --config=experiments/jsb_frames.py --workdir=runs/jsb_bernoulli \
      --config.model.output=bernoulli
"""

from genjax.tasks import experiment_config


def get_config():
  c = experiment_config('piano_roll', 'jsb_chorales')
  c.data.resolution = 'quarter'
  c.data.max_steps = 160  # shared with model.block_size
  c.data.batch_size = 16
  # Small and heavily dropped out: 229 chorales (13,807 steps) overfit a 4-layer, 256-wide
  # model within a few hundred steps (a probe; the record will follow).
  c.model.num_layers = 2
  c.model.num_heads = 4
  c.model.width = 128
  c.model.dropout = 0.5
  c.model.nade_hidden = 64
  c.optim.learning_rate = 1e-3
  c.train.steps = 3_500
  c.train.log_every = 100
  c.train.eval_every = 500
  c.train.checkpoint_every = 500
  c.train.sample_every = 1_500
  return c
