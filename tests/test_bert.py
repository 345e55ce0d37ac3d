"""BERT pretraining, the stdlib_modules labels, and fine-tuning with config.init_from."""

import logging
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util

import genjax

from genjax import tasks
from genjax.config import ConfigError
from genjax.data import stdlib_modules
from genjax.data.spec import DataSpec, Feature, example_batch
from genjax.data.tokenizers import SentencePieceTokenizer, load_tokenizer
from genjax.models import Encoder
from genjax.run import init_from, loop
from genjax.step import train_step
from genjax.tasks import bert
from genjax.tasks.base import per_example_keys
from tests import tiny

VOCAB = 300


def _windows(rows, length, seed=0):
  return jax.random.randint(jax.random.PRNGKey(seed), (rows, length), 3, VOCAB)


@jax.jit
def _mask(tokens):
  keys = per_example_keys(jax.random.PRNGKey(1), jnp.arange(tokens.shape[0]))
  return bert.mask_tokens(tokens, keys, vocab_size=VOCAB, mask_id=VOCAB)


def test_masking_chooses_exactly_15_percent_then_80_10_10():
  tokens = np.asarray(_windows(2000, 128))
  m = jax.device_get(_mask(tokens))
  assert m['positions'].shape == (2000, 19)  # round(0.15 * 128)
  assert np.all(m['weights'] == 1.0)
  assert all(len(set(row)) == 19 for row in m['positions'])  # distinct positions
  np.testing.assert_array_equal(np.take_along_axis(tokens, m['positions'], 1), m['targets'])
  at = np.take_along_axis(m['inputs'], m['positions'], 1)
  shares = [np.mean(m['kind'] == k) for k in range(3)]
  np.testing.assert_allclose(shares, [0.8, 0.1, 0.1], atol=0.01)
  assert np.all(at[m['kind'] == 0] == VOCAB)  # [MASK]
  random = at[m['kind'] == 1]
  assert np.all((random >= 1) & (random < VOCAB))  # never padding, never [MASK]
  assert 0.9 < np.mean(random != m['targets'][m['kind'] == 1])  # mostly another token
  np.testing.assert_array_equal(at[m['kind'] == 2], m['targets'][m['kind'] == 2])
  chosen = np.zeros(tokens.shape, bool)
  np.put_along_axis(chosen, m['positions'], True, 1)
  np.testing.assert_array_equal(m['inputs'][~chosen], tokens[~chosen])  # the rest untouched
  # Every position is as likely to be chosen.
  per_position = chosen.mean(0)
  assert per_position.min() > 0.11 and per_position.max() < 0.19


def test_masking_chooses_among_real_tokens_only():
  tokens = np.array(_windows(4, 40))
  for row, n in enumerate((40, 20, 7, 1)):
    tokens[row, n:] = 0
  m = jax.device_get(_mask(tokens))
  assert m['positions'].shape == (4, 6)
  np.testing.assert_array_equal(m['weights'].sum(1), [6, 3, 1, 1])  # round(0.15 n), >= 1
  for row, n in enumerate((40, 20, 7, 1)):
    used = m['positions'][row][m['weights'][row] == 1]
    assert np.all(used < n)
    np.testing.assert_array_equal(m['inputs'][row, n:], 0)  # padding stays padding


class _Tokenizer:
  kind = 'sentencepiece'
  vocab_size = VOCAB


def _bert_task(length=24, **model):
  config = tasks.experiment_config('bert', 'python_stdlib')
  config.model.update(num_layers=1, num_heads=2, width=16, dropout=0.0, **model)
  spec = DataSpec(
    {'tokens': Feature((length + 1,), 'int32', VOCAB, 'tokenizer')}, {'tokenizer': _Tokenizer()}
  )
  return config, bert.build(config, spec)


def test_loss_is_the_cross_entropy_at_the_chosen_positions_only():
  _, task = _bert_task()
  batch = {'tokens': _windows(6, 25), 'index': jnp.arange(6)}
  params, _ = jax.jit(task.init)(jax.random.PRNGKey(0), batch)
  rng = jax.random.PRNGKey(7)

  @jax.jit
  def by_hand(params):
    """The loss from the logits of every position, weighted by the chosen ones."""
    keys = per_example_keys(jax.random.fold_in(rng, bert._MASK_SALT), batch['index'])
    m = bert.mask_tokens(batch['tokens'][:, :24], keys, vocab_size=VOCAB, mask_id=VOCAB)
    chosen = jnp.zeros((6, 24)).at[jnp.arange(6)[:, None], m['positions']].set(m['weights'])

    def every_position(logits):
      xent = optax.softmax_cross_entropy_with_integer_labels(logits, batch['tokens'][:, :24])
      return jnp.mean(jnp.sum(xent * chosen, 1) / jnp.sum(chosen, 1))

    logits = task.model.apply(params, m['inputs'])
    at = task.model.apply(params, m['inputs'], m['positions'])
    gathered = jnp.take_along_axis(logits, m['positions'][..., None], 1)
    return every_position(logits), jax.grad(every_position)(logits), chosen, at, gathered

  loss, _ = jax.jit(task.loss)(params, batch, rng)
  expected, grad, chosen, at, gathered = jax.device_get(by_hand(params))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  unchosen = chosen == 0
  assert np.all(grad[unchosen] == 0) and np.all(np.abs(grad).sum(-1)[~unchosen] > 0)
  # predict_at gives those very logits, without the vocabulary product elsewhere.
  np.testing.assert_allclose(at, gathered, atol=1e-6)


@pytest.mark.parametrize('num_classes', [0, 3])
def test_encoder_outputs_do_not_depend_on_padding(num_classes):
  model = Encoder(vocab_size=VOCAB, max_length=32, num_layers=2, num_heads=2, width=16,
                  num_classes=num_classes)  # fmt: skip
  real = np.array(_windows(3, 10))
  real[1, 6:] = 0  # a shorter row
  padded = np.pad(real, ((0, 0), (0, 22)))
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), padded)

  @jax.jit
  def outputs(tokens):
    return (
      model.apply(variables, tokens, method=model.encode),
      model.apply(variables, tokens, method=model.embed),
      model.apply(variables, tokens),
    )

  (states, features, out), (states_p, features_p, out_p) = outputs(real), outputs(padded)
  np.testing.assert_allclose(states_p[0, :10], states[0], atol=1e-5)
  np.testing.assert_allclose(states_p[1, :6], states[1, :6], atol=1e-5)
  assert features.shape == (3, 16)
  np.testing.assert_allclose(features_p, features, atol=1e-5)
  np.testing.assert_allclose(out_p[:, :10] if not num_classes else out_p, out, atol=1e-5)


# ------------------------------------------------------------------ stdlib_modules


def test_module_names_are_hidden_from_the_text():
  hide = stdlib_modules.hide_module_names
  code = 'def f(x):\n  asyncio.sleep(x); _asyncio_mode = events.Events(); return prevents'
  assert hide(code, 'asyncio/events.py') == (
    'def f(x):\n  _.sleep(x); ___mode = _._(); return prevents'
  )
  assert hide('os.path.join(close, OS)', 'os.py') == '_.path.join(close, _)'
  examples = stdlib_modules.load_examples(tuple(stdlib_modules.top_families(3)))
  for split in stdlib_modules.SPLITS:
    for e in examples[split][::7]:
      assert not re.search(rf'(?i)(?<![a-z0-9]){re.escape(e.family)}(?![a-z0-9])', e.text), e
      if len(e.family.lstrip('_')) >= 4:
        assert e.family.lstrip('_').lower() not in e.text.lower(), e
  files = {split: {e.where.split(':')[0] for e in examples[split]} for split in examples}
  assert not files['train'] & (files['test'] | files['final_test'])


@pytest.fixture(scope='module')
def tokenizer_workdir(tmp_path_factory):
  """A workdir holding a small tokenizer, as init_from leaves one."""
  workdir = tmp_path_factory.mktemp('modules')
  families = tuple(stdlib_modules.top_families(3))
  texts = [e.text for e in stdlib_modules.load_examples(families)['train'][:400]]
  SentencePieceTokenizer.train(texts, workdir / 'tokenizer', 512)
  return str(workdir)


def _modules_data(workdir, **fields):
  config = tiny.text_classifier()
  config.data.update(fields)
  return stdlib_modules.dataset(config.data, workdir)


def test_few_labels_keep_k_functions_of_each_class(tokenizer_workdir):
  everything = _modules_data(tokenizer_workdir, num_train=0, num_test=8)
  few = _modules_data(tokenizer_workdir, num_train=0, num_test=8, num_labels_per_class=5)
  assert everything.extras['class_names'] == few.extras['class_names']
  assert len(everything.extras['class_names']) == everything.spec['label'].num_values == 3
  np.testing.assert_array_equal(np.bincount(few.train['label']), [5, 5, 5])
  assert len(everything.train['label']) > 100
  kept = {e.where for e in few.extras['examples']['train']}
  assert kept <= {e.where for e in everything.extras['examples']['train']}
  again = _modules_data(tokenizer_workdir, num_train=0, num_test=8, num_labels_per_class=5)
  np.testing.assert_array_equal(again.train['tokens'], few.train['tokens'])  # deterministic
  other = _modules_data(tokenizer_workdir, num_test=8, num_labels_per_class=5, subset_seed=1)
  assert {e.where for e in other.extras['examples']['train']} != kept
  tokens = few.train['tokens']
  assert tokens.shape == (15, 32) and tokens.dtype == np.int32 and np.all(tokens[:, 0] != 0)


def test_a_saved_tokenizer_of_another_size_is_a_clear_error(tokenizer_workdir):
  with pytest.raises(ConfigError, match='--config.data.vocab_size=512'):
    _modules_data(tokenizer_workdir, vocab_size=1024)


# ------------------------------------------------------------------ init_from


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('bert'))
  loop.train_and_evaluate(tiny.bert(steps=2), workdir)
  return workdir


def test_load_gives_the_encoder_and_its_features(pretrained):
  config, model, variables = genjax.load(pretrained)
  assert isinstance(model, Encoder) and config.task == 'bert'
  tokenizer = load_tokenizer(f'{pretrained}/tokenizer')
  tokens = np.zeros((2, 16), np.int32)
  for row, text in zip(tokens, ('def f(x):\n  return x', 'import os')):
    ids = tokenizer.encode(text)[:16]
    row[: len(ids)] = ids
  features = jax.jit(lambda t: model.apply(variables, t, method=model.embed))(tokens)
  assert features.shape == (2, 16) and np.all(np.isfinite(features))


def _fine_tune_config(source, **model):
  c = tiny.text_classifier(steps=1)
  c.init_from = source
  c.data.max_length = 16  # the pretrained positions
  c.data.num_train = 32
  c.optim.learning_rate = 1e-12  # one step that moves nothing measurably
  c.model.update(model)
  return c


def _flat(params):
  return {k: np.asarray(v) for k, v in traverse_util.flatten_dict(params, sep='/').items()}


def test_init_from_copies_exactly_the_matching_parameters(pretrained, tmp_path, caplog):
  config = _fine_tune_config(pretrained)
  workdir = str(tmp_path / 'cls')
  with caplog.at_level(logging.INFO):
    state = loop.train_and_evaluate(config, workdir)
  source, _, what = init_from.read_params(pretrained)
  assert what == 'params'
  tuned = _flat(jax.device_get(state.params))
  copied = [p for p in tuned if p in source]
  assert copied and all('classifier_head' not in p for p in copied)
  assert {p for p in tuned if p not in source} == {p for p in tuned if 'classifier_head' in p}
  for path in copied:
    np.testing.assert_allclose(tuned[path], source[path], atol=1e-9, err_msg=path)
  assert 'init_from' in caplog.text and 'classifier_head' in caplog.text
  assert 'mlm_head' in caplog.text  # named as not used
  # The same tokenizer, so that ids mean the same tokens.
  ids = lambda d: load_tokenizer(f'{d}/tokenizer').model_proto
  assert ids(workdir) == ids(pretrained)
  # The head starts where it starts without init_from.
  spec = DataSpec.load(workdir)
  task = tasks.build(config, spec)
  example = example_batch(spec, config.data.batch_size)
  tx = task.make_optimizer(config)
  init = jax.jit(lambda rng: train_step.initial_state(task, config, tx, rng, example).params)
  fresh = _flat(init(jax.random.PRNGKey(config.seed)))
  for path in tuned:
    if path not in source:
      np.testing.assert_allclose(tuned[path], fresh[path], atol=1e-9, err_msg=path)


def test_init_from_another_shape_lists_the_mismatched_parameters(pretrained, tmp_path):
  config = _fine_tune_config(pretrained)
  config.data.max_length = 32
  with pytest.raises(ConfigError) as raised:
    loop.train_and_evaluate(config, str(tmp_path / 'cls'))
  assert not (tmp_path / 'cls' / 'config.json').exists()  # refused before it is written
  message = str(raised.value)
  assert "'bert' run; this is 'text_classifier'" in message
  assert 'params/wpe/embedding: (16, 16) in' in message and '(32, 16) in this model' in message
  assert message.count('\n  params/') == 1  # only the position table differs


def test_init_from_of_another_family_lists_what_is_missing():
  target = {'params/Conv_0/kernel': np.zeros((3, 3, 1, 4)), 'params/head/kernel': np.zeros(2)}
  source = {'params/wte/embedding': np.zeros((5, 4))}
  with pytest.raises(ConfigError, match=r'params/Conv_0/kernel: \(3, 3, 1, 4\) in this model'):
    init_from.match(target, source, ('head',), 'runs/x')
  copied, kept, unused = init_from.match(
    {'params/wte/embedding': np.zeros((5, 4)), 'params/head/kernel': np.zeros(2)},
    source | {'params/mlm_head/bias': np.zeros(5), 'params/head/kernel': np.zeros(3)},
    ('head',),
    'runs/x',
  )
  assert (copied, kept, unused) == (
    ['params/wte/embedding'],
    ['params/head/kernel'],  # a head for other classes starts afresh
    ['params/mlm_head/bias', 'params/head/kernel'],
  )


def test_init_from_a_missing_run_says_to_train_it(tmp_path):
  with pytest.raises(FileNotFoundError, match='not a genjax workdir'):
    init_from.prepare(str(tmp_path / 'nothing'), str(tmp_path / 'cls'))


def test_a_vectorized_sweep_refuses_init_from(tmp_path):
  from genjax.sweeps import vectorized  # pylint: disable=import-outside-toplevel

  config = tiny.text_classifier()
  config.init_from = str(tmp_path / 'bert')
  with pytest.raises(ConfigError, match='without --vectorize'):
    vectorized.train_vectorized(config, [{'optim.learning_rate': 1e-3}], [str(tmp_path / 'a')])
