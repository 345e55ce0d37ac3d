r"""A GPT on Python code: the standard library of the interpreter that runs it.

The `.py` files under `sysconfig.get_paths()['stdlib']` are split by file (a stable hash
of the path puts ~10% in validation). A SentencePiece BPE tokenizer is trained on the
training files and saved in the workdir. Evaluation adds `parse_rate`: the share of
held-out function headers whose sampled completion `ast.parse` accepts. Sized for a
30-minute run on a 2-core CPU.

  python -m launch.main --config=experiments/python_code.py --workdir=runs/python_code
  python -m launch.evaluate --workdir=runs/python_code    # loss, perplexity, parse_rate
  python -m launch.sample --workdir=runs/python_code --prompt="def fibonacci(n):" --temperature=0.6
"""

from genjax.tasks import experiment_config


def get_config():
  c = experiment_config('lm', 'python_stdlib')
  c.data.block_size = 128  # shared with model.block_size
  c.data.tokenizer = 'sentencepiece'
  c.data.vocab_size = 2048
  c.data.num_val_windows = 500  # fixed validation windows of 128 tokens
  c.data.batch_size = 16

  c.model.num_layers = 4
  c.model.num_heads = 4
  c.model.width = 192
  c.model.dropout = 0.0  # one pass over a fraction of the data: nothing to regularise yet

  c.train.steps = 3_000
  c.train.eval_every = 500
  c.train.sample_every = 1_000

  c.eval.batch_size = 100
  c.eval.num_examples = 500
  c.eval.parse_samples = 100  # held-out function headers completed by the model
  c.eval.parse_max_new_tokens = 128
  c.eval.parse_temperature = 0.8
  c.eval.parse_top_k = 200

  c.sample.prompt = 'def '
  c.sample.max_new_tokens = 200
  return c
