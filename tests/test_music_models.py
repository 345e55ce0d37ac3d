"""The music models and their samplers: the piano-roll NADE Transformer, the four-voice
vocabulary, the evaluation windows and the forced-token sampler."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from genjax import tasks
from genjax.config import ConfigError
from genjax.data import datasets, jsb_files
from genjax.data.jsb_chorales import StepWindowSource, VoiceVocabulary
from genjax.models import DecoderLM
from genjax.models.piano_roll import (
  PianoRollTransformer,
  frame_log_likelihood,
  sample_frames,
)
from genjax.tasks.voice_sampling import sample_stream
from genjax.tasks.voices import piece_windows, read_melody
from tests import tiny


def _rolls(rng, batch=2, steps=6, keys=88):
  return jnp.asarray(np.random.default_rng(rng).random((batch, steps, keys)) < 0.1)


def _model(output='nade', **fields):
  fields = {'block_size': 8, 'num_layers': 1, 'num_heads': 2, 'width': 16, **fields}
  return PianoRollTransformer(output=output, nade_hidden=8, **fields)


@pytest.mark.parametrize('output', ['nade', 'bernoulli'])
def test_a_uniform_model_scores_88_log_2_per_frame(output):
  model = _model(output)
  frames = _rolls(0)
  variables = model.init(jax.random.PRNGKey(0), frames)
  zeros = jax.tree.map(jnp.zeros_like, variables)
  ll = frame_log_likelihood(model.apply(zeros, frames), frames)
  np.testing.assert_allclose(ll, -88 * math.log(2), rtol=1e-6)


def test_each_key_sees_only_earlier_frames_and_the_keys_below_it():
  model = _model()
  frames = _rolls(1).astype(jnp.float32)
  variables = model.init(jax.random.PRNGKey(0), frames)
  # d logit[t, k] / d frames[t', k'] is zero unless t' < t, or t' == t and k' < k.
  jacobian = jax.jacfwd(lambda f: model.apply(variables, f)[0])(frames)[:, :, 0]  # [T,K,T,K]
  t, k, t2, k2 = np.meshgrid(*(np.arange(n) for n in jacobian.shape), indexing='ij')
  allowed = (t2 < t) | ((t2 == t) & (k2 < k))
  assert np.all(np.asarray(jacobian)[~allowed] == 0)
  assert np.any(np.asarray(jacobian)[allowed] != 0)


def test_the_bernoulli_output_reads_no_key_of_its_own_frame():
  model = _model('bernoulli')
  frames = _rolls(2).astype(jnp.float32)
  variables = model.init(jax.random.PRNGKey(0), frames)
  jacobian = jax.jacfwd(lambda f: model.apply(variables, f)[0])(frames)[:, :, 0]
  t, _, t2, _ = np.meshgrid(*(np.arange(n) for n in jacobian.shape), indexing='ij')
  assert np.all(np.asarray(jacobian)[t2 >= t] == 0)


def test_sampled_frames_keep_their_prefix_and_follow_the_model():
  model = _model()
  variables = nn.unbox(model.init(jax.random.PRNGKey(0), _rolls(0)))
  prefix = _rolls(3, batch=3, steps=2)
  drawn = sample_frames(model, variables, jax.random.PRNGKey(1), 3, 8, prefix=prefix)
  assert drawn.shape == (3, 8, 88) and drawn.dtype == bool
  np.testing.assert_array_equal(drawn[:, :2], prefix)
  # An all-off model (a large negative bias on every key) composes silence.
  flat = traverse_util.flatten_dict(variables)
  quiet = traverse_util.unflatten_dict(
    {
      k: jnp.full_like(v, -30.0) if k[-2:] == ('visible_bias', 'bias') else 0 * v
      for k, v in flat.items()
    }
  )
  assert not sample_frames(model, quiet, jax.random.PRNGKey(1), 2, 4).any()


def test_too_many_frames_is_a_clear_error():
  model = _model()
  with pytest.raises(ValueError, match='exceed block_size=8'):
    model.init(jax.random.PRNGKey(0), _rolls(0, steps=9))


def test_voice_vocabulary_round_trips_and_holds():
  voices = np.array([[72, 67, 64, 48], [72, 67, -1, 48], [74, 65, 62, 50]])
  plain = VoiceVocabulary(36, 81)
  tokens = plain.encode(voices)
  assert tokens.shape == (16,) and list(tokens[:4]) == [0, 0, 0, 0]
  np.testing.assert_array_equal(plain.decode(tokens[4:]), voices)
  held = VoiceVocabulary(36, 81, hold_tokens=True)
  tokens = held.encode(voices)
  assert list(tokens[8:12]) == [2, 2, 1, 2]  # three held voices and a rest
  np.testing.assert_array_equal(held.decode(tokens[4:]), voices)
  with pytest.raises(ConfigError, match='bass C1 at step 0 is outside'):
    plain.encode(np.array([[72, 67, 64, 24]]))


@pytest.mark.parametrize('every', [1, 4])
def test_training_windows_start_on_the_chosen_steps_of_each_chorale(every):
  lengths = [4 * 23, 4 * 9, 4 * 40]  # three chorales' streams, start step included
  piece = np.concatenate([np.full(n, i) for i, n in enumerate(lengths)])
  step = np.concatenate([np.arange(n) // 4 for n in lengths])  # the chorale's step
  source = StepWindowSource(piece, lengths, 16, batch_size=256, seed=0, every=every)
  starts = np.concatenate([source.starts(s) for s in range(4)])
  assert np.all(starts % 4 == 0) and np.all(step[starts] % every == 0)
  assert np.all(starts + 17 <= len(piece))  # a whole window of inputs and targets
  assert len(set(piece[starts])) == 3  # every chorale is drawn from


def test_evaluation_windows_score_every_token_once():
  stream = np.arange(4 + 4 * 37) % 50 + 3  # a start step, then 37 steps
  windows, scored = piece_windows(stream, 16)
  counts = np.zeros(len(stream), int)
  for w, (window, mask) in enumerate(zip(windows, scored)):
    start = w * 8
    np.testing.assert_array_equal(window[: len(stream) - start], stream[start : start + 17])
    for j in np.flatnonzero(mask):
      counts[start + 1 + j] += 1
      assert j >= 7 or w == 0  # at least half a window of context, but in the first
  np.testing.assert_array_equal(counts[4:], 1)
  assert counts[:4].sum() == 0  # the start step is given, never scored


def _greedy_oracle(model, variables, forced, known, context):
  """Greedy fill-in with full forward passes over the sampler's windows: token i + 1
  from tokens[start(i) : i + 1], start(i) = 0 until the context fills, then advancing by
  half a context at a time. Each pass reads a fixed [B, context] window (causal: what
  follows position i - start does not change its logits), so it compiles once."""
  forward = jax.jit(lambda window: model.apply(variables, window))
  tokens = np.array(forced)
  half = context // 2
  padded = lambda t, start: np.pad(t[:, start:], ((0, 0), (0, context)))[:, :context]
  for i in range(tokens.shape[1] - 1):
    start = 0 if i < context else half + (i - context) // half * half
    logits = forward(jnp.asarray(padded(tokens, start)))[:, i - start]
    logits = logits.at[:, 0].set(-jnp.inf)
    drawn = np.asarray(jnp.argmax(logits, -1))
    tokens[:, i + 1] = np.where(known[:, i + 1], tokens[:, i + 1], drawn)
  return tokens


def test_the_sampler_keeps_given_tokens_and_matches_full_passes_across_slides():
  model = DecoderLM(vocab_size=12, block_size=16, num_layers=1, num_heads=2, width=16)
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 16), jnp.int32))
  length = 4 + 4 * 12  # 52 tokens: three slides of a 16-token context
  forced = np.random.default_rng(0).integers(3, 12, (2, length)).astype(np.int32)
  forced[:, :4] = 0
  known = np.zeros_like(forced, bool)
  known[:, :4] = True
  known[:, 4::4] = True  # a melody
  drawn = np.asarray(
    sample_stream(
      model,
      variables,
      jnp.asarray(forced),
      jnp.asarray(known),
      jax.random.PRNGKey(0),
      banned=0,
      temperature=0.0,
    )
  )
  np.testing.assert_array_equal(drawn[known], forced[known])
  np.testing.assert_array_equal(drawn, _greedy_oracle(model, variables, forced, known, 16))


def test_a_melody_index_past_the_split_names_the_valid_ones():
  data_dir = None  # config.data.dir unset: GENJAX_DATA_DIR
  vocab = VoiceVocabulary(36, 81)
  line, chorale = read_melody('test:12', data_dir, vocab)
  np.testing.assert_array_equal(line, chorale[:, 0])
  with pytest.raises(ConfigError, match=r'the test split has chorales 0\.\.76; give one as test:N'):
    read_melody('test:77', data_dir, vocab)
  with pytest.raises(ConfigError, match='no such file'):
    read_melody('tune.mid', data_dir, vocab)


def test_harmonize_keeps_the_melody_and_writes_bach_after_it():
  config = tiny.voices()
  data = datasets.load(config.data)
  task = tasks.build(config, data.spec)
  variables, _ = task.init(jax.random.PRNGKey(0), data.train_source(8, 0).example())
  drawn = task.views['harmonize'](variables, {}, jax.random.PRNGKey(1), 2, melody='test:3')
  chorale = jsb_files.read_voices(None)['test'][3]
  assert drawn.names == ['harmonization_0', 'harmonization_1', 'bach']
  assert [p.shape for p in drawn.pieces] == [chorale.shape] * 3
  for piece in drawn.pieces[:2]:
    np.testing.assert_array_equal(piece[:, 0], chorale[:, 0])
  np.testing.assert_array_equal(drawn.pieces[2], chorale)
  assert not np.array_equal(drawn.pieces[0], drawn.pieces[1])  # sampled, not copied
