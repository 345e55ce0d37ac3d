r"""Character-level GPT on Tiny Shakespeare (nanoGPT's shakespeare_char), in two sizes.

The default is nanoGPT's GPU config (6 layers, 6 heads, 384 wide, context 256, dropout
0.2, batch 64, 5,000 steps); `:cpu` is its CPU config (4 layers, 4 heads, 128 wide,
context 64, batch 12, 2,000 steps, no dropout) with a peak learning rate of 3e-3,
minutes on a laptop. Train on the first 90% of the characters, validate on the last 10%.
Any text works with --config.data.path.

  python -m launch.main --config=experiments/shakespeare_char.py:cpu --workdir=runs/shakespeare_cpu
  python -m launch.evaluate --workdir=runs/shakespeare_cpu      # loss (nats/char), bits_per_char
  python -m launch.sample --workdir=runs/shakespeare_cpu --prompt="ROMEO:" --max_new_tokens=500
  python -m launch.main --config=experiments/shakespeare_char.py \
      --workdir=runs/shakespeare  # the GPU size
  python -m launch.main --config=experiments/shakespeare_char.py:cpu --workdir=runs/mine \
      --config.data.path=my_corpus.txt
"""

from genjax.config import ConfigError
from genjax.tasks import experiment_config

SIZES = ('default', 'cpu')


def get_config(size: str = 'default'):
  size = size or 'default'
  if size not in SIZES:
    raise ConfigError(f'experiments/shakespeare_char.py:{size}: the sizes are {SIZES}.')
  c = experiment_config('lm', 'tinyshakespeare')  # nanoGPT's recipe (genjax.tasks.lm)
  c.data.block_size = 256  # shared with model.block_size
  c.data.batch_size = 64
  c.train.steps = 5_000
  if size == 'cpu':
    c.model.block_size = 64
    c.model.num_layers = 4
    c.model.num_heads = 4
    c.model.width = 128
    c.model.dropout = 0.0
    c.data.batch_size = 12
    c.train.steps = 2_000
    # nanoGPT keeps 1e-3 here; this small model wants more. `launch.sweep` over
    # get_sweep(), full validation loss at 2,000 steps: 1e-3 1.9041, 2e-3 1.8079, 3e-3 1.7724.
    c.optim.learning_rate = 3e-3
    # 50 steps per compiled call (one per log line): the host dispatches, and the two CPU
    # devices start together, once per 50 steps. Step time against 1 per call: 0.93 to
    # 0.95 (paired chunks, 2 CPU devices); JAX/PyTorch tokens/s (bench.lm) 0.946 -> 1.074.
    c.train.steps_per_call = 50
  return c


def get_sweep(size: str = 'default'):
  """Peak learning rate: nanoGPT's 1e-3 against larger ones (the CPU model is small).

  python -m launch.sweep --config=experiments/shakespeare_char.py:cpu --workdir=DIR
  """
  del size  # the same rates for both sizes
  return [{'optim.learning_rate': lr} for lr in (1e-3, 2e-3, 3e-3)]
