"""The BERT family: a bidirectional `Encoder` pretrained by masked language modelling.

Batches hold `tokens` windows of a text corpus (`genjax.data.text`, e.g. the Python
standard library with its SentencePiece BPE); the first `block_size` tokens of each are
the input. In every window exactly round(`loss.mask_rate` x its real tokens) positions
are chosen (15%: 19 of 128), a uniformly random subset; of the chosen ones each is
replaced by [MASK] with probability `loss.mask_token_share` (0.8), by a random token
with probability `loss.random_token_share` (0.1), and kept as it is otherwise (Devlin et
al. 2019). The loss is the cross-entropy of the original tokens at the chosen positions
only: the model predicts nothing else (`Encoder(predict_at=...)`), so no other position
carries loss or gradient. A fixed count rather than a coin per token keeps the shapes
static and every window's loss an average of the same number of terms.

Choices and dropout masks come from each example's own key (`per_example_keys`), so
'pmap', 'jit' and one device see the same masks. `launch.evaluate` masks the validation
windows with keys fixed by `eval.mask_seed` and the window's number: the same positions
in every evaluation and every run, so the masked-token accuracy is comparable across
runs. The test rows written during training use fixed masks of their own (the loop's
evaluation key), the same at every evaluation of a run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.models.seq2seq import PAD_ID
from genjax.tasks import encoder_fields
from genjax.tasks.base import Task, per_example_keys

# Folded into the step key for the masking draws, so they never reuse the dropout keys.
_MASK_SALT = 0xB3A7


def num_chosen(length: int, rate: float) -> int:
  """Positions chosen in a window of `length` real tokens: round(rate * length), at least
  one (a window with tokens always teaches something), at most `length`."""
  return min(length, max(1, round(rate * length))) if length else 0


def mask_tokens(
  tokens: jax.Array,
  keys: jax.Array,
  *,
  vocab_size: int,
  mask_id: int,
  rate: float = 0.15,
  mask_share: float = 0.8,
  random_share: float = 0.1,
) -> dict[str, jax.Array]:
  """BERT's corruption of `tokens` [B, T] (0 = padding), one key per row.

  Returns a dict of
    inputs [B, T]: the tokens with the chosen positions replaced;
    positions [B, K]: the chosen positions (K = num_chosen(T, rate); a row with fewer
      real tokens fills its last slots with positions whose weight is 0);
    targets [B, K]: the original tokens there;
    weights [B, K]: 1.0 for a chosen position, 0.0 for an unused slot;
    kind [B, K]: 0 [MASK], 1 random token, 2 kept (for tests and reports).
  Random tokens are drawn from 1..vocab_size-1: never padding, never [MASK].
  """
  length = tokens.shape[1]
  slots = num_chosen(length, rate)

  def one(row, key):
    k_choose, k_kind, k_random = jax.random.split(key, 3)
    real = row != PAD_ID
    n = jnp.sum(real)
    count = jnp.where(n > 0, jnp.clip(jnp.round(rate * n), 1, n), 0).astype(jnp.int32)
    # A uniformly random ordering of the real positions first, padding after.
    scores = jnp.where(real, jax.random.uniform(k_choose, (length,)), 2.0)
    positions = jnp.argsort(scores)[:slots]
    used = jnp.arange(slots) < count
    targets = row[positions]
    u = jax.random.uniform(k_kind, (slots,))
    kind = jnp.where(u < mask_share, 0, jnp.where(u < mask_share + random_share, 1, 2))
    random_ids = jax.random.randint(k_random, (slots,), 1, vocab_size).astype(row.dtype)
    replaced = jnp.select(
      [kind == 0, kind == 1], [jnp.full_like(targets, mask_id), random_ids], targets
    )
    inputs = row.at[positions].set(jnp.where(used, replaced, targets))
    return inputs, positions, targets, used.astype(jnp.float32), kind

  inputs, positions, targets, weights, kind = jax.vmap(one)(tokens, keys)
  return {
    'inputs': inputs,
    'positions': positions,
    'targets': targets,
    'weights': weights,
    'kind': kind,
  }


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  encoder_fields.add_config_fields(c)
  config_lib.add_fields(
    c,
    {
      'loss.mask_rate': 0.15,  # share of each window's tokens chosen for prediction
      'loss.mask_token_share': 0.8,  # of the chosen: replaced by [MASK]
      'loss.random_token_share': 0.1,  # of the chosen: replaced by a random token (rest kept)
      'eval.mask_seed': 0,  # fixes which validation tokens are masked, in every evaluation
    },
  )
  c.optim.name = 'adamw'
  c.optim.learning_rate = 5e-4
  c.optim.warmup_steps = 200
  c.optim.schedule = 'cosine'
  c.optim.end_learning_rate_factor = 0.1
  c.optim.b2 = 0.98
  c.optim.weight_decay = 0.01
  c.optim.decay_only_matrices = True  # BERT decays no biases or LayerNorm scales
  c.optim.grad_clip_norm = 1.0
  c.parallel.strategy = 'pmap'  # as the language model: faster on XLA:CPU
  c.train.log_every = 50
  c.train.eval_every = 500
  c.train.sample_every = 0  # an encoder draws nothing
  c.eval.batch_size = 64
  c.eval.num_examples = 500  # validation windows scored during training


def _check_loss_config(loss: ml_collections.ConfigDict) -> None:
  if not 0.0 < loss.mask_rate < 1.0:
    raise ConfigError(f'config.loss.mask_rate={loss.mask_rate} must be in (0, 1); BERT uses 0.15.')
  shares = (loss.mask_token_share, loss.random_token_share)
  if min(shares) < 0 or sum(shares) > 1.0:
    raise ConfigError(
      f'config.loss.mask_token_share={shares[0]} and random_token_share={shares[1]} must be '
      '>= 0 and sum to at most 1 (the rest of the chosen tokens are kept); BERT: 0.8, 0.1.'
    )


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  del runs
  if 'tokens' not in spec or not spec['tokens'].tokenizer:
    raise ConfigError(
      f'The bert family pretrains on token windows of a text corpus; the '
      f'{config.data.name!r} dataset has none (use python_stdlib, tinyshakespeare or text).'
    )
  _check_loss_config(config.loss)
  tokenizer = spec.tokenizer('tokens')
  if tokenizer.kind == 'char':
    raise ConfigError(
      'The bert family keeps id 0 for padding, which a character tokenizer gives a '
      "character; pass --config.data.tokenizer=sentencepiece (its id 0, <unk>, never occurs)."
    )
  length = spec['tokens'].shape[0] - 1  # windows are block_size + 1 long (an LM's)
  model = encoder_fields.make_encoder(config.model, tokenizer.vocab_size, length)
  corrupt = lambda tokens, keys: mask_tokens(
    tokens[:, :length],
    keys,
    vocab_size=model.vocab_size,
    mask_id=model.mask_id,
    rate=config.loss.mask_rate,
    mask_share=config.loss.mask_token_share,
    random_share=config.loss.random_token_share,
  )

  def per_example(params, masked, *, train=False, rng=None, index=None):
    """(loss, accuracy) [B] over each example's chosen positions."""
    rngs = {'dropout': rng} if train else {}
    logits = model.apply(
      params,
      masked['inputs'],
      masked['positions'],
      train=train,
      rngs=rngs,
      example_ids=index if train else None,
    )
    weights = masked['weights']
    count = jnp.maximum(jnp.sum(weights, axis=-1), 1.0)
    xent = optax.softmax_cross_entropy_with_integer_labels(logits, masked['targets'])
    hits = (jnp.argmax(logits, -1) == masked['targets']).astype(jnp.float32)
    return jnp.sum(xent * weights, -1) / count, jnp.sum(hits * weights, -1) / count

  def init(rng, batch):
    tokens = jnp.asarray(batch['tokens'])[:1, :length]
    return model.init(rng, tokens, jnp.zeros((1, 1), jnp.int32)), {}

  def loss(params, batch, rng):
    keys = per_example_keys(jax.random.fold_in(rng, _MASK_SALT), batch['index'])
    masked = corrupt(batch['tokens'], keys)
    losses, accuracy = per_example(params, masked, train=True, rng=rng, index=batch['index'])
    # A mean of per-example means: exact whatever the device split (equal batch shares).
    return jnp.mean(losses), {'masked_token_accuracy': jnp.mean(accuracy)}

  def eval_metrics(params, batch, rng):
    keys = per_example_keys(jax.random.fold_in(rng, _MASK_SALT), batch['index'])
    losses, accuracy = per_example(params, corrupt(batch['tokens'], keys))
    return {'loss': losses, 'masked_token_accuracy': accuracy}

  @jax.jit
  def window_scores(params, tokens, window_ids, seed_key):
    keys = per_example_keys(seed_key, window_ids)
    masked = corrupt(tokens, keys)
    losses, accuracy = per_example(params, masked)
    return losses, accuracy, masked['targets'], masked['weights']

  def evaluate(params, data, rng, eval_config=config.eval):
    """Masked-token loss and accuracy over every validation window, masked alike in every
    evaluation (eval.mask_seed), beside the accuracy of always guessing the most common
    training token."""
    del rng
    windows = np.asarray(data.test['tokens'])
    seed_key = jax.random.PRNGKey(int(eval_config.mask_seed))
    size = int(eval_config.batch_size)
    totals = np.zeros(2)
    targets, weights = [], []
    for start in range(0, len(windows), size):
      chunk = windows[start : start + size]
      real = len(chunk)
      if real < size:  # one shape: compiled once
        chunk = np.concatenate([chunk, np.repeat(chunk[:1], size - real, axis=0)])
      ids = np.arange(start, start + size, dtype=np.int32)
      losses, accuracy, t, w = jax.device_get(window_scores(params, chunk, ids, seed_key))
      totals += [losses[:real].sum(), accuracy[:real].sum()]
      targets.append(t[:real])
      weights.append(w[:real])
    targets, weights = np.concatenate(targets), np.concatenate(weights)
    results = {
      'masked_token_loss': float(totals[0] / len(windows)),
      'masked_token_accuracy': float(totals[1] / len(windows)),
      'val_windows': int(len(windows)),
      'predicted_tokens': int(weights.sum()),
    }
    train_tokens = data.extras.get('train_tokens')
    if train_tokens is not None and len(train_tokens):
      common = int(np.argmax(np.bincount(np.asarray(train_tokens, np.int64))))
      results['most_common_token_accuracy'] = float(
        np.sum((targets == common) * weights) / max(weights.sum(), 1.0)
      )
    return results

  return Task(
    name='bert',
    model=model,
    init=init,
    loss=loss,
    eval_metrics=eval_metrics,
    evaluate=evaluate,
    views={},
    default_view='',
    head=('mlm_head',),
  )
