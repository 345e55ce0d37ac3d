"""The encoder-decoder family end to end: it learns, decodes, scores, and handles bad input."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import genjax
from genjax import api
from genjax.data import datasets, text_pairs
from genjax.evaluation import bleu
from genjax.models.seq2seq import EncoderDecoder
from genjax.run import loop
from genjax.tasks import seq2seq
from genjax.tasks.translator import Decoding, Translator
from tests import tiny

BOS, EOS = 1, 2


class _Digits:
  """A tokenizer stand-in for a copy task over ids 3..11."""

  bos_id, eos_id, vocab_size = BOS, EOS, 12

  def decode(self, ids):
    return ' '.join(str(int(i)) for i in ids)


def _copy_batch(rng, rows=32):
  lengths = rng.integers(3, 7, size=rows)
  source = np.zeros((rows, 8), np.int32)
  target = np.zeros((rows, 9), np.int32)
  for r, n in enumerate(lengths):
    seq = rng.integers(3, 12, size=n)
    source[r, : n + 1] = np.append(seq, EOS)
    target[r, : n + 2] = np.concatenate([[BOS], seq, [EOS]])
  return {
    'source': source,
    'target': target,
    'target_mask': target != 0,
    'token_scale': np.full(rows, rows / (target != 0)[:, 1:].sum(), np.float32),
    'index': np.arange(rows, dtype=np.int32),
  }


def test_it_learns_to_copy_and_greedy_and_beam_decode_it():
  model = EncoderDecoder(
    vocab_size=12, max_length=16, num_encoder_layers=1, num_decoder_layers=1, num_heads=2,
    width=32, dropout=0.0,
  )  # fmt: skip
  rng = np.random.default_rng(0)
  params = model.init(jax.random.PRNGKey(0), _copy_batch(rng)['source'], _copy_batch(rng)['target'])
  tx = optax.adam(3e-3)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, batch):
    def loss(p):
      summed, _, _ = seq2seq.token_losses(model, p, batch)
      return jnp.mean(summed * batch['token_scale'])

    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = tx.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, value

  for _ in range(400):
    params, opt_state, value = step(params, opt_state, _copy_batch(rng))
  assert float(value) < 0.05  # nats per target token

  held_out = _copy_batch(np.random.default_rng(1), rows=20)
  nats = jax.jit(lambda batch: jnp.sum(seq2seq.token_losses(model, params, batch)[1]))
  # A copier reads its source: another example's source costs it many nats.
  assert nats(seq2seq.shuffled_sources(held_out)) > 20 * nats(held_out) + 10

  translator = Translator(model, _Digits(), text_pairs.Preparation(), batch_size=16)
  sources = [row[row != 0] for row in held_out['source']]
  expected = [' '.join(str(i) for i in s[:-1]) for s in sources]
  for decoding in (Decoding(beam_size=1), Decoding(beam_size=4, alpha=0.6)):
    outputs = translator.outputs(params, sources, decoding)
    assert np.mean([o == e for o, e in zip(outputs, expected)]) >= 0.9, (outputs, expected)


def test_bleu_variants_on_fixed_strings():
  import sacrebleu

  hyps = ['the cat sat on the mat .', 'a dog runs in the park .']
  refs = ['the cat sat on the mat .', 'a dog is running in a park .']
  assert bleu.tokenized_bleu(hyps, refs) == pytest.approx(
    sacrebleu.corpus_bleu(hyps, [refs], tokenize='none').score
  )
  score, signature = bleu.sacrebleu_score(['The cat sat.'], ['the cat sat.'], lowercase=True)
  assert score == pytest.approx(100.0) and 'case:lc' in signature
  cased, _ = bleu.sacrebleu_score(['The cat sat.'], ['the cat sat.'])
  assert cased < 100.0
  assert bleu.chrf(hyps, refs) == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
  # CodeXGLUE's smoothed BLEU-4, worked by hand: 3 of 6 reference words, every n-gram of
  # the hypothesis right; the 4-gram precision is smoothed to 1/1; brevity exp(1 - 7/4).
  assert bleu.smoothed_bleu4(['The cat sat'], ['the cat sat on the mat']) == pytest.approx(
    100 * np.exp(-0.75)
  )
  assert bleu.smoothed_bleu4(['Return the sum.'], ['Return the sum.']) == pytest.approx(100.0)
  assert bleu.rouge_l(['return the sum'], ['return the sum']) == pytest.approx(100.0)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('s2s') / 'run')
  loop.train_and_evaluate(tiny.seq2seq(steps=4), workdir)
  return workdir


def test_an_empty_input_gives_an_empty_line_and_a_warning(trained, caplog):
  _, task, state = api.load_state(trained)
  view = task.views['translate']
  variables = task.inference_variables(state)
  with caplog.at_level(logging.WARNING):
    drawn = view(variables, {}, jax.random.PRNGKey(0), 1, input='   ')
  assert drawn.show() == '\n' and 'Input 1 is empty' in caplog.text


def test_input_file_lines_each_give_one_output_line(trained, tmp_path):
  _, task, state = api.load_state(trained)
  path = tmp_path / 'in.txt'
  path.write_text('Ein Hund.\n\nZwei Männer ✈ spielen Fußball.\n', encoding='utf-8')  # ✈: unseen
  drawn = task.views['translate'](
    task.inference_variables(state), {}, jax.random.PRNGKey(0), 1, input_file=str(path), beam=1
  )
  assert len(drawn.show().rstrip('\n').split('\n')) == 3
  assert drawn.show().split('\n')[1] == ''


def test_evaluation_reports_both_bleus_with_the_signature(trained):
  saved, task, state = api.load_state(trained)
  data = datasets.load(saved.data, workdir=trained)
  report = task.evaluate(task.inference_variables(state), data, jax.random.PRNGKey(0))
  for key in ('bleu', 'sacrebleu', 'chrf', 'loss', 'loss_shuffled_sources', 'decode_seconds'):
    assert np.isfinite(report[key]), key
  assert 'case:lc' in report['sacrebleu_signature']  # the run trained on lowercased text
  assert report['num_examples'] == 8 and report['split'] == 'test_2016_flickr'
  _, model, _ = genjax.load(trained)
  assert isinstance(model, EncoderDecoder)


def test_truncate_train_sources_keeps_long_pairs_with_their_head_and_eos(tmp_path):
  """By default a training pair with a source over data.max_length is dropped; with
  data.truncate_train_sources its source keeps the first tokens and EOS instead."""
  c = tiny.seq2seq()
  c.data.max_length = 24
  counts = {}
  for truncate in (False, True):
    c.data.truncate_train_sources = truncate
    data = datasets.load(c.data, workdir=str(tmp_path / str(truncate)))
    source = data.source(1, 0)
    lengths = source.features['source'].lengths
    counts[truncate] = source.num_examples
    assert lengths.max() <= 24
  assert counts[True] > counts[False]
  eos = data.extras['tokenizer'].eos_id
  rows = [r[r != 0] for r in source.batch(0)['source']]
  assert {int(r[-1]) for r in rows if r.size} == {eos}  # every source still ends in EOS


def test_word_dropout_hides_decoder_inputs_per_example_and_never_bos():
  rng = jax.random.PRNGKey(0)
  inputs = np.random.default_rng(0).integers(3, 50, (8, 200)).astype(np.int32)
  inputs[:, 0] = BOS
  ids = jnp.arange(8)
  dropped = np.asarray(seq2seq.drop_words(rng, inputs, ids, 0.3))
  hidden = dropped == 0
  assert np.all(dropped[:, 0] == BOS) and np.all((dropped == inputs) | hidden)
  assert 0.25 < hidden[:, 1:].mean() < 0.35
  # An example's mask is its own, wherever it sits in the batch (as the model's dropout).
  half = seq2seq.drop_words(rng, inputs[4:], ids[4:], 0.3)
  np.testing.assert_array_equal(np.asarray(half), dropped[4:])


def test_word_dropout_applies_in_training_only():
  model = EncoderDecoder(
    vocab_size=12, max_length=16, num_encoder_layers=1, num_decoder_layers=1, num_heads=2,
    width=16, dropout=0.0,
  )  # fmt: skip
  batch = _copy_batch(np.random.default_rng(0), rows=8)
  params = model.init(jax.random.PRNGKey(0), batch['source'], batch['target'])
  rng = jax.random.PRNGKey(1)
  plain = seq2seq.token_losses(model, params, batch)[1]
  evaluated = seq2seq.token_losses(model, params, batch, rng=rng, word_dropout=0.5)[1]
  trained = seq2seq.token_losses(model, params, batch, train=True, rng=rng, word_dropout=0.5)[1]
  np.testing.assert_array_equal(np.asarray(evaluated), np.asarray(plain))
  assert not np.allclose(np.asarray(trained), np.asarray(plain))
