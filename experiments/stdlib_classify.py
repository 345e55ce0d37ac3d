r"""Which part of the standard library is this function from? A text classifier on
Python code, fine-tuned from the BERT of experiments/stdlib_bert.py or trained from
scratch.

The data (genjax/data/stdlib_modules.py): every function of the standard library,
labelled by the top-level package or module of its file (the data.num_classes = 10 with
the most functions: asyncio, email, idlelib, ...), with the names of its own module
replaced by `_` in its text. Files are split as the pretraining corpus splits them, so
the encoder never saw a held-out function. The encoder's mean-pooled states go through a
tanh layer to the class logits. Evaluation reports the accuracy on the held-out functions,
per class, and the majority-class baseline.

  python -m launch.main --config=experiments/stdlib_bert.py --workdir=runs/bert
  python -m launch.main --config=experiments/stdlib_classify.py --config.init_from=runs/bert \
      --workdir=runs/cls                                    # fine-tuned, all labels
  python -m launch.main --config=experiments/stdlib_classify.py --config.init_from=runs/bert \
      --config.data.num_labels_per_class=100 --workdir=runs/cls_100     # 100 labels a class
  python -m launch.main --config=experiments/stdlib_classify.py --workdir=runs/cls_scratch
  python -m launch.evaluate --workdir=runs/cls    # held_out_accuracy, per_class_accuracy

The four runs (pretrained and from scratch, 100 labels a class and all) in one table:

  python -m bench.bert_finetune --bert_workdir=runs/bert --workdir=runs/bert_finetune

init_from copies the pretrained trunk (and its tokenizer: the ids must agree) and leaves
the classification head at its initialisation; the optimizer starts afresh.
"""

from experiments import stdlib_bert
from genjax.tasks import experiment_config


def get_config():
  c = experiment_config('text_classifier', 'stdlib_modules')
  c.data.num_classes = 10
  c.data.vocab_size = stdlib_bert.VOCAB_SIZE
  c.data.max_length = stdlib_bert.LENGTH  # the pretrained encoder's positions
  c.data.batch_size = 16
  c.model.update(stdlib_bert.ENCODER)
  c.model.dropout = 0.1
  c.optim.learning_rate = 3e-4
  c.optim.warmup_steps = 50
  c.train.steps = 500  # ~4 min a run on 2 cores: 8 epochs of 100 a class, 1.2 of all labels
  c.train.log_every = 50
  c.train.eval_every = 250
  c.train.checkpoint_every = 250
  c.eval.batch_size = 100
  c.eval.num_examples = 1_000
  return c
