r"""Code summarization: a Python function's source -> the first line of its docstring.

Pairs from this interpreter's standard library (genjax/data/docstrings.py: whole files per
split by a stable hash of their path, the stdlib's own tests left out). An encoder-decoder
Transformer with a joint BPE over code and summaries; evaluated as CodeXGLUE code-to-text
is (smoothed BLEU-4) and by ROUGE-L, beside two baselines scored the same way: the
function's name as words, and the summary of the most similar training function.

  python -m launch.main --config=experiments/stdlib_docstrings.py --workdir=runs/docstrings
  python -m launch.evaluate --workdir=runs/docstrings    # bleu4, rouge_l, and the baselines'
  python -m launch.sample --workdir=runs/docstrings --input_file=some_module.py
"""

from genjax.tasks import experiment_config


def get_config():
  c = experiment_config('seq2seq', 'stdlib_docstrings')
  c.data.vocab_size = 8000
  c.data.max_length = 256  # tokens of code; longer training functions are left out
  # 1,300 steps of 4,096 tokens, some 7 epochs of the 5,388 pairs, train in under an hour
  # on a 2-core CPU (results/stdlib_docstrings.json has the wall time).
  c.data.tokens_per_batch = 4096
  c.data.length_multiple = 32  # 8 source lengths to compile rather than 32
  c.data.pad_target_to_longest = True  # a summary is short: no decoder work on padding
  c.data.name_hint = True  # '# get close matches' ahead of the code
  # Without these two the decoder learns the summaries' language alone and the encoder
  # collapses to one state for every token (docs/translation.md): an auxiliary BERT loss
  # on the source, and word dropout on the decoder's inputs. The test loss with shuffled
  # sources beside the test loss (results/stdlib_docstrings.json) shows how much the code
  # is read. loss.bag_of_words=1.0 as well made it read more but scored no higher (the
  # issue-16 notes).
  c.loss.source_mlm = 1.0
  c.loss.word_dropout = 0.3
  c.model.num_encoder_layers = 3
  c.model.num_decoder_layers = 3
  c.model.width = 256
  c.model.mlp_ratio = 2
  c.model.num_heads = 4
  c.model.dropout = 0.2
  c.model.positions = 'learned'
  c.loss.label_smoothing = 0.1
  c.optim.learning_rate = 2e-3
  c.optim.warmup_steps = 200
  c.train.steps = 1300
  c.train.eval_every = 250
  c.train.checkpoint_every = 250
  c.eval.split = 'final_test'
  c.eval.metrics = 'summary'
  c.eval.beam_size = 5
  c.eval.alpha = 0.6
  c.eval.max_length_a = 0.0  # a summary's length does not grow with the code's
  c.eval.max_length_b = 40
  c.sample.input = 'def add(a, b):\n  return a + b'
  return c
