r"""BERT on Python code: a bidirectional encoder pretrained by masked language modelling
on this interpreter's standard library, then fine-tuned to tell which part of the
library a function comes from (experiments/stdlib_classify.py).

The corpus, split and tokenizer are python_code's (the stdlib's .py files, ~10% held out
by a stable hash of the path; a 2,048-piece SentencePiece BPE trained on the rest). In
each window of 128 tokens 15% are chosen (exactly 19); of those 80% become [MASK], 10% a
random token and 10% stay, and the model predicts the originals (genjax/tasks/bert.py).
Evaluation reports the masked-token accuracy on the held-out files, always masked alike.
Sized with the fine-tunes for an hour on a 2-core CPU.

  python -m launch.main --config=experiments/stdlib_bert.py --workdir=runs/bert
  python -m launch.evaluate --workdir=runs/bert     # masked_token_accuracy, _loss

Then (experiments/stdlib_classify.py):

  python -m launch.main --config=experiments/stdlib_classify.py --config.init_from=runs/bert \
      --workdir=runs/cls

Its features in your own code:

  config, model, variables = genjax.load('runs/bert')   # a genjax.models.Encoder
  features = model.apply(variables, tokens, method=model.embed)   # [B, 192]
"""

from genjax.tasks import experiment_config

# The encoder's shape, shared with the classifier that starts from it (stdlib_classify.py):
# init_from copies parameters whose names and shapes match.
ENCODER = {'num_layers': 4, 'num_heads': 4, 'width': 192, 'mlp_ratio': 4}
VOCAB_SIZE = 2048
LENGTH = 128  # tokens per window, the encoder's positions


def get_config():
  c = experiment_config('bert', 'python_stdlib')
  c.data.tokenizer = 'sentencepiece'
  c.data.vocab_size = VOCAB_SIZE
  c.data.block_size = LENGTH
  c.data.num_val_windows = 500  # fixed held-out windows: 500 x 19 masked tokens
  c.data.batch_size = 32
  c.model.update(ENCODER)
  c.model.dropout = 0.0  # well under one pass over the corpus: nothing to regularise yet
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 200
  c.train.steps = 2_000  # sized for about half an hour on 2 cores; not yet recorded
  c.train.log_every = 50
  c.train.eval_every = 500
  c.train.checkpoint_every = 500
  c.eval.batch_size = 100
  c.eval.num_examples = 500
  return c
