"""The encoder-decoder and beam search: padding, cached decoding, greedy, exhaustive search."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.models import decoding
from genjax.models.beam_search import beam_search_jit, greedy, length_penalty
from genjax.models.seq2seq import EncoderDecoder, Seq2SeqDecoder

BOS, EOS = 1, 2


def _model(vocab=11, **kwargs):
  fields = dict(
    vocab_size=vocab,
    max_length=12,
    num_encoder_layers=2,
    num_decoder_layers=2,
    num_heads=2,
    width=16,
    dropout=0.0,
  )
  return EncoderDecoder(**{**fields, **kwargs})


def _variables(model, scale=1.0, seed=0):
  source = jnp.array([[3, 4, 5, 0], [6, 7, 8, 9]])
  variables = model.init(jax.random.PRNGKey(seed), source, source)
  # Scaled-up weights make the next-token distributions peaked, so the best sequence is
  # not a near tie with the second best.
  return jax.tree.map(lambda x: x * scale, variables)


@pytest.mark.parametrize('positions', ['learned', 'sinusoidal'])
def test_encoder_output_does_not_depend_on_padding(positions):
  model = _model(positions=positions)
  variables = _variables(model)
  source = jnp.array([[3, 4, 5, 6, 0, 0], [7, 8, 0, 0, 0, 0]])
  short = model.apply(variables, source[:, :4], method=model.encode)
  long = jnp.pad(source, ((0, 0), (0, 5)))
  longer = model.apply(variables, long, method=model.encode)
  np.testing.assert_allclose(longer[0, :4], short[0, :4], atol=1e-5)
  np.testing.assert_allclose(longer[1, :2], short[1, :2], atol=1e-5)
  # And the decoder's logits with it.
  target = jnp.array([[BOS, 3, 4], [BOS, 5, 6]])
  np.testing.assert_allclose(
    model.apply(variables, long, target), model.apply(variables, source, target), atol=1e-5
  )


@pytest.mark.parametrize('share_embeddings', [True, False])
def test_cached_decoding_equals_the_full_forward_pass(share_embeddings):
  model = _model(share_embeddings=share_embeddings)
  variables = _variables(model)
  source = jnp.array([[3, 4, 5, 0], [6, 7, 8, 9]])
  decoder = Seq2SeqDecoder(model, length=8)
  encoded = decoder.encoded(variables, source)
  target = jnp.array([[BOS, 3, 4, 5, 6, 7], [BOS, 8, 9, 10, 3, 4]])
  full = decoder.forward(encoded, target)
  np.testing.assert_allclose(full, model.apply(variables, source, target), atol=1e-5)
  cache = decoder.init_cache(2)
  logits, cache = decoder.step(encoded, target[:, :2], cache, 0)  # a prefill of two
  steps = [logits]
  for i in range(2, target.shape[1]):
    logits, cache = decoder.step(encoded, target[:, i : i + 1], cache, i)
    steps.append(logits)
  np.testing.assert_allclose(jnp.concatenate(steps, axis=1), full, atol=1e-5)


def test_dropout_is_per_example_and_off_at_inference():
  model = _model(dropout=0.3)
  variables = _variables(model)
  source = jnp.array([[3, 4, 5, 0], [3, 4, 5, 0]])
  target = jnp.array([[BOS, 3, 4], [BOS, 3, 4]])
  ids = jnp.array([0, 1])
  train = lambda key, ids: model.apply(
    variables, source, target, train=True, rngs={'dropout': key}, example_ids=ids
  )
  a = train(jax.random.PRNGKey(1), ids)
  assert not np.allclose(a[0], a[1])  # same example twice, different ids: different masks
  b = train(jax.random.PRNGKey(1), ids[::-1])
  np.testing.assert_allclose(a[0], b[1], atol=1e-6)  # a mask follows its example's id
  np.testing.assert_allclose(
    model.apply(variables, source, target), model.apply(variables, source, target)
  )


def test_auxiliary_heads_read_the_encoder_and_leave_the_logits_alone():
  plain = _model()
  with_heads = _model(source_prediction=True, bag_prediction=True)
  variables = _variables(with_heads)
  assert {'source_head', 'bag_head'} <= set(variables['params'])
  source = jnp.array([[3, 4, 5, 0], [6, 7, 8, 9]])
  at = jnp.array([[0, 2], [3, 1]])
  logits, aux = with_heads.apply(variables, source, source, predict_source_at=at, predict_bag=True)
  assert aux['source'].shape == (2, 2, 11) and aux['bag'].shape == (2, 11)
  # The heads add nothing to the decoder's path.
  trunk = {'params': {k: v for k, v in variables['params'].items() if not k.endswith('_head')}}
  np.testing.assert_allclose(logits, plain.apply(trunk, source, source), rtol=1e-6)
  memory = with_heads.apply(variables, source, method=with_heads.encode)
  states = jnp.stack([memory[0, jnp.array([0, 2])], memory[1, jnp.array([3, 1])]])
  # The bag head sees the mean over real positions only: the first source has 3.
  pooled = jnp.stack([memory[0, :3].mean(0), memory[1].mean(0)])
  head = lambda name: lambda m, x: getattr(m, name)(x, m.embed.embedding)
  for name, inputs, key in (('source_head', states, 'source'), ('bag_head', pooled, 'bag')):
    expected = with_heads.apply(variables, inputs, method=head(name))
    np.testing.assert_allclose(aux[key], expected, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match='source_prediction=True'):
    plain.apply(trunk, source, source, predict_source_at=at)
  with pytest.raises(ValueError, match='bag_prediction=True'):
    plain.apply(trunk, source, source, predict_bag=True)


def test_beam_of_one_is_greedy():
  model = _model()
  variables = _variables(model, scale=4.0)
  source = jnp.array([[3, 4, 5, 0], [6, 7, 8, 9], [10, 3, 0, 0]])
  decoder = Seq2SeqDecoder(model, length=9)
  encoded = decoder.encoded(variables, source)
  tokens, _ = greedy(decoder, encoded, jnp.full((3,), BOS), max_new_tokens=8, eos_id=EOS)
  sampled, _ = decoding.generate(
    decoder,
    encoded,
    jnp.full((3, 1), BOS),
    jax.random.PRNGKey(0),
    max_new_tokens=8,
    temperature=0.0,
    eos_id=EOS,
  )
  np.testing.assert_array_equal(tokens, sampled)


@dataclasses.dataclass(frozen=True)
class MarkovDecoder:
  """A Decoder whose next-token logits are a fixed random table of (position, row, token):
  a search space where the greedy path is often not the best one."""

  vocab: int = 5
  length: int = 4

  @property
  def context(self):
    return self.length

  def variables(self, rows, seed):
    table = 2.0 * jax.random.normal(
      jax.random.PRNGKey(seed), (rows, self.length, self.vocab, self.vocab)
    )
    return {'table': table}

  def init_cache(self, batch):
    return {'unused': jnp.zeros((batch, 1))}

  def step(self, variables, tokens, cache, index):
    table = jax.lax.dynamic_index_in_dim(variables['table'], index, axis=1, keepdims=False)
    return jax.vmap(lambda rows, t: rows[t])(table, tokens[:, 0])[:, None], cache

  def forward(self, variables, tokens):
    positions = jnp.arange(tokens.shape[1])
    return jax.vmap(lambda table, row: table[positions, row])(variables['table'], tokens)

  def repeat_batch(self, variables, times):
    return {'table': jnp.repeat(variables['table'], times, axis=0)}


def _all_scores(decoder, variables, row, max_new_tokens, alpha):
  """Every output row `row` can have (ending in EOS, or at the limit), with its score."""
  variables = {'table': variables['table'][row : row + 1]}
  scores = {}
  for n in range(1, max_new_tokens + 1):
    for body in itertools.product(range(decoder.vocab), repeat=n - 1):
      if EOS in body:
        continue
      for end in [EOS] if n < max_new_tokens else range(decoder.vocab):
        output = (*body, end)
        target = jnp.array([(BOS, *output)])
        logp = jax.nn.log_softmax(decoder.forward(variables, target[:, :-1]))
        total = float(jnp.sum(jnp.take_along_axis(logp[0], target[0, 1:, None], axis=-1)))
        scores[output] = total / float(length_penalty(jnp.array(n), alpha))
  return scores


@pytest.mark.parametrize('alpha', [0.0, 0.6, 2.0])
def test_wide_beam_finds_the_most_likely_output_of_a_small_vocabulary(alpha):
  decoder, rows = MarkovDecoder(), 8
  variables = decoder.variables(rows, seed=0)
  bos = jnp.full((rows,), BOS)
  tokens, scores = beam_search_jit(
    decoder, variables, bos, beam_size=32, max_new_tokens=3, eos_id=EOS, alpha=alpha
  )
  greedy_tokens, _ = greedy(decoder, variables, bos, max_new_tokens=3, eos_id=EOS)
  beats_greedy = 0
  for row in range(rows):
    every = _all_scores(decoder, variables, row, 3, alpha)
    ranked = sorted(every, key=every.get, reverse=True)
    best = ranked[0]
    assert every[best] - every[ranked[1]] > 1e-3  # no near tie to make the test flaky
    found = tuple(int(t) for t in tokens[row, 0][: len(best)])
    assert found == best, (found, best, every[best])
    np.testing.assert_allclose(scores[row, 0], every[best], rtol=1e-5)
    assert np.all(np.diff(np.asarray(scores[row])) <= 1e-6)  # best first
    beats_greedy += tuple(int(t) for t in greedy_tokens[row][: len(best)]) != best
  assert beats_greedy >= 1  # the search found what greedy decoding misses


def test_beam_search_respects_each_rows_length_limit():
  model = _model()
  variables = _variables(model)
  source = jnp.array([[3, 4, 5, 0], [6, 7, 8, 9]])
  decoder = Seq2SeqDecoder(model, length=9)
  encoded = decoder.encoded(variables, source)
  tokens, scores = beam_search_jit(
    decoder,
    encoded,
    jnp.full((2,), BOS),
    beam_size=3,
    max_new_tokens=8,
    eos_id=EOS,
    max_lengths=jnp.array([2, 8]),
  )
  assert tokens.shape == (2, 3, 8)
  # Row 0 stops at two tokens: what follows is the filler, and every score is finite.
  assert np.all((np.asarray(tokens[0, :, 2:]) == EOS) | (np.asarray(tokens[0, :, 2:]) == 0))
  assert np.all(np.asarray(scores) > -1e8)
