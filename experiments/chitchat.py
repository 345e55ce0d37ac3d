r"""A chat model: a GPT trained on the Chit-Chat Challenge conversations, as turns.

The `chitchat-dataset` package (MIT licence, 7,168 English conversations; `pip install -e
'.[chat]'`) is read from its installed copy and checked by SHA-256. Each message is a
turn: `<speaker1>`/`<speaker2>`, its text, `<eot>` (genjax.data.chat_format); 5% of the
conversations, by a stable hash of their ids, are held out. A 4,096-piece SentencePiece
BPE is trained on the training turns and saved in the workdir. Evaluation reports the
validation perplexity per token beside an interpolated Kneser-Ney 3-gram's on the same
tokens, and distinct-1/2 of sampled replies beside the human replies'. Sized for the
hour of training a 2-core CPU is given (4,000 steps of 4,096 tokens, some 5 passes over
the 3.26 million training tokens); results/chitchat.json holds the time it took.

  python -m launch.main --config=experiments/chitchat.py --workdir=runs/chat
  python -m launch.evaluate --workdir=runs/chat     # perplexity, kn3_perplexity, distinct-1/2
  python -m launch.chat --workdir=runs/chat         # talk to it (/reset, /quit)
  python -m launch.sample --workdir=runs/chat       # a conversation from its start
"""

from genjax.tasks import experiment_config


def get_config():
  c = experiment_config('chat', 'chitchat')
  c.data.block_size = 256  # shared with model.block_size: a dozen turns of context
  c.data.vocab_size = 4096
  c.data.batch_size = 16

  c.model.num_layers = 4
  c.model.num_heads = 4
  c.model.width = 256
  c.model.dropout = 0.1

  c.train.steps = 4_000  # 2,200 stopped still learning, level with the 3-gram's perplexity
  c.train.log_every = 100
  c.train.eval_every = 500
  c.train.sample_every = 1_000
  c.train.steps_per_call = 50  # one compiled call per 50 steps: fewer host round trips

  c.eval.batch_size = 50
  c.eval.num_examples = 400  # validation windows scored during training (launch.evaluate: all 765)
  c.eval.reply_samples = 200  # held-out turns answered for distinct-1/2
  return c
