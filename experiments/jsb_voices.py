r"""Bach chorales as four voices: the decoder LM on soprano, alto, tenor and bass at 16th
notes (Coconet's `Jsb16thSeparated`), interleaved one step at a time.

Each 16th step is four tokens, one pitch (or rest) per voice from soprano to bass; the
stream of a chorale starts with a step of `<start>` tokens (genjax/data/jsb_chorales.py).
Windows of 512 tokens (128 steps, 8 bars) start on a quarter note of a chorale
(data.start_every=4), as evaluation's and the sampler's do, so the learned positions
tell the model where the beat is. The reported figure is the
NLL per token on the validation and test chorales, each token scored once with at least
half a window of context (genjax/tasks/voices.py); the published figures it compares
with (Huang et al. 2018, Table 1) are per-token NLLs on the validation split, trained
without transposition, as this config is (data.transpose=0).

  python -m launch.main --config=experiments/jsb_voices.py --workdir=runs/jsb_voices
  python -m launch.evaluate --workdir=runs/jsb_voices   # *_nll_per_token, music statistics
  python -m launch.sample --workdir=runs/jsb_voices --mode=compose --num=4
  python -m launch.sample --workdir=runs/jsb_voices --mode=harmonize --melody=test:12
  python -m launch.sample --workdir=runs/jsb_voices --mode=harmonize --melody=tune.mid
"""

from genjax.tasks import experiment_config


def get_config():
  c = experiment_config('voices', 'jsb_voices')
  c.data.block_size = 512  # shared with model.block_size; a multiple of 8 * start_every
  c.data.start_every = 4  # windows start on a quarter note (above)
  c.data.batch_size = 8  # in 30 CPU-minutes more updates beat bigger batches
  c.model.num_layers = 4
  c.model.num_heads = 4
  c.model.width = 256
  c.model.dropout = 0.2  # 221,000 training tokens: a small corpus
  c.optim.learning_rate = 1e-3
  c.train.steps = 1_800
  c.train.log_every = 100
  c.train.eval_every = 500
  c.train.checkpoint_every = 500
  c.train.sample_every = 900
  c.train.steps_per_call = 50
  c.eval.batch_size = 32
  return c
