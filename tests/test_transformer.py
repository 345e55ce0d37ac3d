"""DecoderLM and its sampling: shapes, dtypes, causality, cache == full forward, cached
generation == nanoGPT's uncached loop, the sliding window, sampling filters, eos,
streaming and validation."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from genjax.models import Decoder, DecoderLM, LMDecoder, generate, generate_uncached
from genjax.models.decoding import (
  as_decoder,
  filter_logits,
  generate_jit,
  generate_uncached_jit,
  sample_token,
)
from genjax.models.transformer import gelu
from tests.trees import assert_trees_close

VOCAB, BLOCK = 11, 16
TINY = dict(vocab_size=VOCAB, block_size=BLOCK, num_layers=2, num_heads=2, width=16)
MODEL = DecoderLM(**TINY)
DECODER = LMDecoder(MODEL)
KEY = jax.random.key(0)
# One set of static arguments, so most generation tests share one compiled program.
NEW = 24  # with 4-token prompts this runs past block_size, through two slides.


def tokens(batch: int, length: int, seed: int = 1) -> jnp.ndarray:
  return jax.random.randint(jax.random.key(seed), (batch, length), 0, VOCAB)


@pytest.fixture(scope='module')
def init_variables():
  return nn.unbox(jax.jit(MODEL.init)(KEY, tokens(1, BLOCK)))  # plain arrays, no axis names


@pytest.fixture(scope='module')
def variables(init_variables):
  # nanoGPT's 0.02 init gives near-uniform logits, where float noise could flip an
  # argmax; larger weights give well separated, varied greedy tokens.
  return jax.tree.map(lambda p: 10 * p, init_variables)


@pytest.fixture(scope='module')
def forward():
  return jax.jit(MODEL.apply)


@pytest.fixture(scope='module')
def cached_forward():
  return jax.jit(lambda v, x, cache, index: MODEL.apply(v, x, cache=cache, cache_index=index))


def test_params_are_float32_and_initialised_as_nanogpt(init_variables):
  params = init_variables['params']
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
  assert set(params) == {'wte', 'wpe', 'h_0', 'h_1', 'ln_f'}
  assert 'bias' not in str(jax.tree.structure(params))  # use_bias=False
  assert params['wte']['embedding'].shape == (VOCAB, 16)
  assert params['wpe']['embedding'].shape == (BLOCK, 16)
  block = params['h_0']
  assert block['attn']['c_attn']['kernel'].shape == (16, 48)
  assert block['mlp']['c_fc']['kernel'].shape == (16, 64)
  # 0.02, and 0.02 / sqrt(2 * num_layers) on the residual output projections.
  np.testing.assert_allclose(np.std(block['mlp']['c_fc']['kernel']), 0.02, rtol=0.15)
  np.testing.assert_allclose(np.std(block['mlp']['c_proj']['kernel']), 0.01, rtol=0.15)
  np.testing.assert_allclose(np.std(block['attn']['c_attn']['kernel']), 0.02, rtol=0.15)
  np.testing.assert_allclose(np.std(block['attn']['c_proj']['kernel']), 0.01, rtol=0.3)


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
def test_logits_shape_and_dtype_and_remat(init_variables, forward, dtype):
  x = tokens(3, BLOCK)
  reference = forward(init_variables, x)
  model = DecoderLM(**TINY, dtype=dtype)
  logits = jax.jit(model.apply)(init_variables, x)
  assert logits.shape == (3, BLOCK, VOCAB) and logits.dtype == jnp.float32
  remat = DecoderLM(**TINY, dtype=dtype, remat=True)
  np.testing.assert_allclose(jax.jit(remat.apply)(init_variables, x), logits, atol=1e-6)
  error = float(jnp.max(jnp.abs(logits - reference)))
  if dtype == jnp.bfloat16:
    # bfloat16 arithmetic, really: close to float32's logits but not equal.
    assert 0 < error < 0.02 * float(jnp.std(reference))
  else:
    assert error == 0


def test_causality(variables, forward):
  x = tokens(3, BLOCK)
  base = forward(variables, x)
  for t in (0, 5, BLOCK - 1):
    changed = forward(variables, x.at[:, t].set((x[:, t] + 1) % VOCAB))
    np.testing.assert_array_equal(changed[:, :t], base[:, :t])
    assert float(jnp.max(jnp.abs(changed[:, t] - base[:, t]))) > 1e-3


def test_dropout_only_in_training(variables, forward):
  model = DecoderLM(**TINY, dropout=0.5)
  apply = jax.jit(model.apply, static_argnames='train')
  x = tokens(3, BLOCK)
  np.testing.assert_array_equal(apply(variables, x), forward(variables, x))
  train = apply(variables, x, train=True, rngs={'dropout': KEY})
  assert float(jnp.max(jnp.abs(train - forward(variables, x)))) > 1e-2


@pytest.mark.parametrize('scaled', [False, True])
def test_cached_steps_equal_full_forward(
  init_variables, variables, forward, cached_forward, scaled
):
  params = variables if scaled else init_variables
  x = tokens(3, BLOCK)
  full = forward(params, x)
  logits, cache = cached_forward(params, x[:, :5], MODEL.init_cache(3), 0)
  steps = [logits]
  for t in range(5, BLOCK):
    logits, cache = cached_forward(params, x[:, t : t + 1], cache, t)
    steps.append(logits)
  # Relative as well for the larger logits (|logits| ~ 20) of the scaled weights; on CPU
  # the full pass attends with einsums ('auto') and the cached one with
  # dot_product_attention, whose float32 sums round differently (seen: 1.5e-5).
  np.testing.assert_allclose(jnp.concatenate(steps, axis=1), full, atol=5e-5, rtol=1e-5)


def test_padded_prompt_gives_the_same_next_token_logits(variables, forward, cached_forward):
  x = tokens(3, BLOCK)
  padded = x.at[:, 5:].set(tokens(3, BLOCK - 5, seed=7))
  logits, _ = cached_forward(variables, padded, MODEL.init_cache(3), 0)
  np.testing.assert_allclose(logits[:, 4], forward(variables, x)[:, 4], atol=1e-5)


def _sliding_oracle(variables, forward, prompt, steps):
  """Greedy tokens from full forwards over the window the cached loop keeps."""
  history = np.asarray(prompt).tolist()
  start = 0  # the same for every row: they slide at the same step
  out = []
  for _ in range(steps):
    if len(history[0]) - start > BLOCK:
      start = len(history[0]) - BLOCK // 2
    n = len(history[0]) - start
    window = np.zeros((len(history), BLOCK), np.int32)  # causal: the zeros after are unseen
    window[:, :n] = [row[start:] for row in history]
    token = np.argmax(forward(variables, jnp.asarray(window))[:, n - 1], axis=-1)
    for row, t in zip(history, token):
      row.append(int(t))
    out.append(token)
  return np.stack(out, axis=1)


@pytest.fixture(scope='module')
def greedy(variables):
  prompt = tokens(3, 4)
  out, lengths = generate_jit(DECODER, variables, prompt, KEY, max_new_tokens=NEW, temperature=0.0)
  return prompt, np.asarray(out), np.asarray(lengths)


def test_greedy_generate_equals_uncached_and_slides_past_block_size(variables, forward, greedy):
  prompt, cached, lengths = greedy
  uncached = generate_uncached_jit(
    DECODER, variables, prompt, KEY, max_new_tokens=NEW, temperature=0.0
  )
  assert cached.shape == uncached.shape == (3, NEW)
  assert cached.dtype == uncached.dtype == np.int32
  np.testing.assert_array_equal(lengths, [NEW] * 3)
  assert len(np.unique(cached)) > 2  # not a degenerate constant sequence
  # Token i comes from a context of 4 + i tokens: the same for both while <= block_size.
  within = BLOCK - 4 + 1
  np.testing.assert_array_equal(cached[:, :within], uncached[:, :within])
  # Past block_size: cached follows the half-window slide, uncached the nanoGPT crop.
  np.testing.assert_array_equal(cached, _sliding_oracle(variables, forward, prompt, NEW))
  assert not np.array_equal(cached, uncached)
  context = jnp.concatenate([prompt, uncached], axis=1)
  for i in range(within, NEW):
    window = context[:, 4 + i - BLOCK : 4 + i]
    np.testing.assert_array_equal(
      uncached[:, i], np.argmax(forward(variables, window)[:, -1], axis=-1)
    )


def test_padded_prompt_generates_as_the_unpadded_one(variables, greedy):
  prompt, reference, _ = greedy
  padded = jnp.concatenate([prompt, tokens(3, 4, seed=9)], axis=1)
  # A traced prompt_length: one program serves every length up to the padded 8.
  out, _ = generate_jit(
    DECODER, variables, padded, KEY, max_new_tokens=NEW, temperature=0.0, prompt_length=jnp.int32(4)
  )
  np.testing.assert_array_equal(out, reference)


def test_sampling_is_reproducible_per_seed(variables, greedy):
  prompt, greedy_tokens, _ = greedy

  def sample(seed):
    # temperature is traced: the greedy run's program again.
    return generate_jit(
      DECODER, variables, prompt, jax.random.key(seed), max_new_tokens=NEW, temperature=1.0
    )[0]

  first = sample(3)
  np.testing.assert_array_equal(first, sample(3))
  assert not np.array_equal(first, sample(4))
  assert not np.array_equal(first, greedy_tokens)


_sample_jit = jax.jit(sample_token, static_argnames='top_k')


def _draws(logits, n=4000, temperature=1.0, top_k=0, top_p=1.0):
  rows = jnp.broadcast_to(logits, (n, logits.shape[-1]))
  return np.asarray(_sample_jit(rows, jax.random.key(5), temperature, top_k, top_p))


def test_top_k_never_leaves_the_top_k():
  logits = jax.random.normal(jax.random.key(2), (VOCAB,))
  top3 = set(np.argsort(np.asarray(logits))[-3:].tolist())
  filtered = filter_logits(logits, 1.0, top_k=3)
  assert set(np.flatnonzero(np.isfinite(filtered)).tolist()) == top3
  assert set(_draws(logits, top_k=3).tolist()) == top3


def test_top_p_samples_only_the_nucleus():
  probs = jnp.array([0.05, 0.5, 0.1, 0.3, 0.05])
  logits = jnp.log(probs)
  # 0.5 < 0.75 <= 0.5 + 0.3: the nucleus is tokens 1 and 3.
  assert set(_draws(logits, top_p=0.75).tolist()) == {1, 3}
  assert set(_draws(logits, top_p=0.85).tolist()) == {1, 2, 3}
  assert set(_draws(logits, top_p=0.2).tolist()) == {1}  # the top token always stays
  assert set(_draws(logits, top_p=1.0).tolist()) == {0, 1, 2, 3, 4}
  # A traced top_p filters the same way.
  traced = jax.jit(lambda p: filter_logits(logits, 1.0, 0, p))
  np.testing.assert_array_equal(np.isfinite(traced(0.75)), [False, True, False, True, False])
  assert np.all(np.isfinite(traced(1.0)))


def test_temperature():
  logits = jax.random.normal(jax.random.key(3), (4, VOCAB))
  np.testing.assert_allclose(filter_logits(logits, 2.0), logits / 2.0)
  np.testing.assert_array_equal(_draws(logits[0], temperature=0.0), int(jnp.argmax(logits[0])))
  greedy = sample_token(logits, jax.random.key(9), temperature=0.0)
  np.testing.assert_array_equal(greedy, jnp.argmax(logits, axis=-1))


STREAMED: list[tuple[int, np.ndarray]] = []


def _on_token(step: int, new_tokens: np.ndarray) -> None:
  STREAMED.append((step, np.array(new_tokens)))


@pytest.fixture(scope='module')
def eos_run(variables):
  """Sampled runs without and with an eos (streamed): one program each."""
  prompt = tokens(3, 4, seed=11)
  free, _ = generate_jit(DECODER, variables, prompt, KEY, max_new_tokens=NEW, temperature=1.0)
  free = np.asarray(free)
  eos = int(free[0, 2])
  STREAMED.clear()
  out, lengths = generate_jit(
    DECODER,
    variables,
    prompt,
    KEY,
    max_new_tokens=NEW,
    temperature=1.0,
    eos_id=eos,
    on_token=_on_token,
  )
  jax.effects_barrier()
  return free, eos, np.asarray(out), np.asarray(lengths), list(STREAMED)


def test_eos_stops_rows(eos_run):
  free, eos, out, lengths, _ = eos_run
  for row in range(3):
    hits = np.flatnonzero(free[row] == eos)
    length = int(hits[0]) + 1 if hits.size else NEW
    assert lengths[row] == length
    # Same keys per step: identical up to eos, then eos only.
    np.testing.assert_array_equal(out[row, :length], free[row, :length])
    assert np.all(out[row, length:] == eos)
  assert lengths[0] <= 3 and len(set(lengths.tolist())) > 1


def test_on_token_streams_the_returned_tokens_in_order(eos_run):
  _, _, out, lengths, streamed = eos_run
  # The loop ends once every row has emitted eos; the rest is eos, not streamed.
  produced = int(lengths.max())
  assert [step for step, _ in streamed] == list(range(produced))
  np.testing.assert_array_equal(np.stack([t for _, t in streamed], axis=1), out[:, :produced])


def test_bad_inputs_raise(variables):
  with pytest.raises(ValueError, match='crop'):
    MODEL.apply(variables, tokens(1, BLOCK + 1))
  with pytest.raises(ValueError, match='integer tokens'):
    MODEL.apply(variables, jnp.zeros((1, 4)))
  with pytest.raises(ValueError, match='without a cache'):
    MODEL.apply(variables, tokens(1, 4), cache_index=0)
  with pytest.raises(ValueError, match='divisible by num_heads'):
    DecoderLM(**{**TINY, 'num_heads': 3})
  with pytest.raises(ValueError, match='crop'):
    generate(DECODER, variables, tokens(1, BLOCK + 1), KEY, max_new_tokens=2)
  for bad in (0.0, 1.5):
    with pytest.raises(ValueError, match='top_p'):
      generate(DECODER, variables, tokens(1, 4), KEY, max_new_tokens=2, top_p=bad)
  with pytest.raises(ValueError, match='temperature'):
    generate(DECODER, variables, tokens(1, 4), KEY, max_new_tokens=2, temperature=-1.0)
  with pytest.raises(ValueError, match='top_k'):
    generate_uncached(DECODER, variables, tokens(1, 4), KEY, max_new_tokens=2, top_k=-1)
  with pytest.raises(ValueError, match='max_new_tokens'):
    generate(DECODER, variables, tokens(1, 4), KEY, max_new_tokens=0)
  with pytest.raises(ValueError, match='prompt_length'):
    generate(DECODER, variables, tokens(1, 4), KEY, max_new_tokens=2, prompt_length=5)
  with pytest.raises(TypeError, match='expected a Decoder'):
    generate(object(), variables, tokens(1, 4), KEY, max_new_tokens=2)


def test_generation_shorter_than_the_slide_window(variables):
  # 2 + 3 tokens never fill the 16-token context: no slide, and none compiled (the
  # slide's half-block window would not fit the 5-token history).
  prompt = tokens(2, 2)
  out, lengths = generate_jit(DECODER, variables, prompt, KEY, max_new_tokens=3, temperature=0.0)
  oracle = generate_uncached_jit(DECODER, variables, prompt, KEY, max_new_tokens=3, temperature=0.0)
  np.testing.assert_array_equal(out, oracle)
  np.testing.assert_array_equal(lengths, [3, 3])


# Tokens that decoding.py generated before it took a Decoder (when it called DecoderLM
# directly), on CPU, for GOLDEN_MODEL with fixed weights: 5-token prompts that slide twice
# in 30 tokens, the last 16 of a 20-token prompt (so the first new token slides), and a
# padded prompt with a traced prompt_length; greedy, temperature, top-k, top-p, eos. They
# pin the exact numbers of the cached loop; a jax upgrade that rounds differently may
# change a token, then recompute them with a version that passes the oracle tests above.
GOLDEN_MODEL = DecoderLM(vocab_size=65, block_size=16, num_layers=2, num_heads=2, width=32)
GOLDEN_PROMPT = [
  [49, 12, 30, 27, 62, 16, 59, 24, 18, 36, 33, 57, 21, 8, 8, 63, 40, 6, 46, 33],
  [46, 34, 21, 62, 32, 36, 39, 54, 45, 60, 17, 8, 54, 24, 31, 7, 62, 32, 40, 0],
]
GOLDEN = {  # name: (prompt, keyword arguments, tokens, lengths)
  'greedy_short': (
    'short',
    dict(max_new_tokens=30, temperature=0.0),
    [
      [
        50,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        4,
        4,
        50,
        2,
        47,
        47,
        49,
        49,
        33,
        33,
        33,
        50,
        2,
        52,
        18,
        50,
        34,
        0,
        38,
        0,
        0,
        41,
      ],
      [
        50,
        2,
        59,
        18,
        8,
        47,
        12,
        59,
        59,
        59,
        23,
        28,
        7,
        12,
        2,
        4,
        52,
        2,
        47,
        51,
        47,
        49,
        21,
        47,
        8,
        42,
        35,
        35,
        50,
        50,
      ],
    ],
    [30, 30],
  ),
  'sampled_short_eos': (
    'short',
    dict(max_new_tokens=30, temperature=0.8, top_k=10, top_p=0.9, eos_id=22),
    [
      [51, 51, 53, 59] + [22] * 26,
      [
        50,
        63,
        51,
        51,
        30,
        30,
        4,
        63,
        46,
        48,
        33,
        33,
        33,
        26,
        18,
        60,
        0,
        59,
        26,
        50,
        18,
        33,
        33,
        44,
        25,
        0,
        23,
        33,
        50,
        0,
      ],
    ],
    [5, 30],
  ),
  'greedy_full': (
    'full',
    dict(max_new_tokens=20, temperature=0.0),
    [
      [33, 33, 33, 0, 18, 59, 50, 26, 2, 2, 2, 23, 63, 37, 8, 47, 37, 59, 7, 42],
      [23, 34, 63, 37, 37, 2, 2, 2, 2, 2, 2, 47, 47, 47, 8, 47, 8, 8, 7, 4],
    ],
    [20, 20],
  ),
  'sampled_full': (
    'full',
    dict(max_new_tokens=20, temperature=1.0),
    [
      [33, 36, 51, 42, 1, 37, 1, 44, 0, 59, 8, 45, 53, 35, 44, 26, 50, 9, 37, 51],
      [40, 33, 45, 47, 21, 44, 37, 37, 18, 56, 48, 33, 33, 16, 0, 58, 35, 57, 11, 50],
    ],
    [20, 20],
  ),
  'padded_eos': (
    'padded',
    dict(max_new_tokens=25, prompt_length=np.int32(3), temperature=0.7, top_p=0.8, eos_id=5),
    [
      [59, 59, 18, 50, 2, 2, 2, 4, 4, 50, 47, 51, 51, 51, 51, 41, 47, 1, 37, 22, 0, 2, 4, 2, 47],
      [39, 42, 7, 50, 18, 37, 18] + [5] * 18,
    ],
    [25, 8],
  ),
}
GOLDEN_UNCACHED = {  # name: (prompt, keyword arguments, tokens)
  'sampled_short': (
    'short',
    dict(max_new_tokens=30, temperature=0.8, top_k=10, top_p=0.9),
    [
      [
        51,
        51,
        53,
        59,
        22,
        4,
        2,
        2,
        4,
        18,
        8,
        51,
        51,
        27,
        8,
        41,
        47,
        47,
        47,
        51,
        30,
        60,
        4,
        10,
        4,
        5,
        7,
        41,
        20,
        59,
      ],
      [
        50,
        63,
        51,
        51,
        30,
        30,
        4,
        63,
        46,
        48,
        33,
        33,
        33,
        2,
        18,
        43,
        35,
        59,
        2,
        20,
        38,
        50,
        33,
        33,
        33,
        33,
        33,
        33,
        50,
        51,
      ],
    ],
  ),
  'greedy_full': (
    'full',
    dict(max_new_tokens=20, temperature=0.0),
    [
      [33, 52, 0, 50, 41, 59, 2, 18, 59, 41, 41, 41, 33, 33, 33, 33, 33, 33, 33, 33],
      [23, 23] + [33] * 18,
    ],
  ),
}


def _golden_prompt(name: str) -> jnp.ndarray:
  prompt = jnp.asarray(GOLDEN_PROMPT, jnp.int32)
  return {
    'short': prompt[:, :5],
    'full': prompt[:, -16:],  # as TextSampler crops
    'padded': prompt[:, :8].at[:, 3:].set(0),
  }[name]


@pytest.fixture(scope='module')
def golden_variables():
  variables = jax.jit(GOLDEN_MODEL.init)(jax.random.key(42), jnp.zeros((1, 16), jnp.int32))
  return jax.tree.map(lambda p: 4 * p, variables)


@pytest.mark.parametrize('name', GOLDEN)
def test_generate_gives_the_recorded_tokens(golden_variables, name):
  prompt, kwargs, expected, expected_lengths = GOLDEN[name]
  out, lengths = generate_jit(
    LMDecoder(GOLDEN_MODEL), golden_variables, _golden_prompt(prompt), jax.random.key(3), **kwargs
  )
  np.testing.assert_array_equal(out, expected)
  np.testing.assert_array_equal(lengths, expected_lengths)


@pytest.mark.parametrize('name', GOLDEN_UNCACHED)
def test_generate_uncached_gives_the_recorded_tokens(golden_variables, name):
  prompt, kwargs, expected = GOLDEN_UNCACHED[name]
  out = generate_uncached_jit(
    LMDecoder(GOLDEN_MODEL), golden_variables, _golden_prompt(prompt), jax.random.key(3), **kwargs
  )
  np.testing.assert_array_equal(out, expected)


@dataclasses.dataclass(frozen=True)
class SumDecoder:
  """A Decoder of no model: position i's logits pick (offset + i + the sum of the tokens at
  0..i) mod vocab, each row with its own offset.

  The cache is the token buffer and the variables hold the offsets, as an
  encoder-decoder's would hold the encoded source: the loops need nothing else."""

  context: int = 8
  vocab: int = 7

  def init_cache(self, batch):
    return jnp.zeros((batch, self.context), jnp.int32)

  def _logits(self, variables, sums, positions):
    ids = (variables['offset'][:, None] + positions[None] + sums) % self.vocab
    return 5.0 * jax.nn.one_hot(ids, self.vocab)

  def step(self, variables, tokens, cache, index):
    cache = lax.dynamic_update_slice(cache, tokens.astype(jnp.int32), (0, index))
    positions = index + jnp.arange(tokens.shape[1])
    seen = jnp.arange(self.context)[None, :] <= positions[:, None]  # [T, context]: causal
    return self._logits(variables, jnp.sum(cache[:, None] * seen, axis=-1), positions), cache

  def forward(self, variables, tokens):
    return self._logits(variables, jnp.cumsum(tokens, axis=1), jnp.arange(tokens.shape[1]))


def _sum_oracle(decoder, offsets, prompt, steps, slide):
  """SumDecoder's greedy tokens over the half-window slide, or nanoGPT's crop."""
  out = []
  for offset, row in zip(offsets, prompt):
    history, start = list(row), 0
    for _ in range(steps):
      if slide and len(history) - start > decoder.context:
        start = len(history) - decoder.context // 2
      window = history[start:] if slide else history[-decoder.context :]
      history.append((offset + len(window) - 1 + sum(window)) % decoder.vocab)
    out.append(history[len(row) :])
  return np.asarray(out)


def test_any_decoder_generates_with_the_sliding_window():
  decoder = SumDecoder()
  assert isinstance(decoder, Decoder) and isinstance(DECODER, Decoder)
  assert not isinstance(MODEL, Decoder) and as_decoder(MODEL) == DECODER  # the old callers'
  assert as_decoder(decoder) is decoder
  # Equal decoders of equal models are one static argument: they share compiled programs.
  assert LMDecoder(DecoderLM(**TINY)) == DECODER
  assert hash(LMDecoder(DecoderLM(**TINY))) == hash(DECODER)
  variables = {'offset': jnp.array([0, 3], jnp.int32)}
  prompt = [[1, 2, 3], [4, 5, 6]]
  padded = jnp.array([row + [6, 6] for row in prompt], jnp.int32)
  new = 21  # 3 + 21 tokens through a context of 8: three slides
  out, lengths = generate_jit(
    decoder, variables, padded, KEY, max_new_tokens=new, prompt_length=jnp.int32(3), temperature=0.0
  )
  np.testing.assert_array_equal(out, _sum_oracle(decoder, [0, 3], prompt, new, slide=True))
  np.testing.assert_array_equal(lengths, [new, new])
  uncached = generate_uncached_jit(
    decoder, variables, jnp.array(prompt, jnp.int32), KEY, max_new_tokens=new, temperature=0.0
  )
  np.testing.assert_array_equal(uncached, _sum_oracle(decoder, [0, 3], prompt, new, slide=False))


def test_attention_implementations_agree(init_variables):
  """The implementations that differ on a CPU ('auto' is 'einsum' there), forward and
  gradient, against each other."""
  x = tokens(2, BLOCK)
  outputs, grads = {}, {}
  for impl in ('xla', 'einsum'):
    model = DecoderLM(**TINY, attention=impl)
    outputs[impl] = jax.jit(model.apply)(init_variables, x)
    loss = lambda v, m=model: jnp.sum(m.apply(v, x) ** 2)
    grads[impl] = jax.jit(jax.grad(loss))(init_variables)
  np.testing.assert_allclose(outputs['xla'], outputs['einsum'], atol=1e-5)
  assert_trees_close(grads['xla'], grads['einsum'], rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match='attention must be one of'):
    DecoderLM(**TINY, attention='flash')


def test_gelu_is_the_exact_gelu_with_its_gradient():
  x = jnp.linspace(-12.0, 12.0, 2001)
  np.testing.assert_allclose(gelu(x), nn.gelu(x, approximate=False), atol=2e-6, rtol=1e-6)
  grad = jax.vmap(jax.grad(gelu))(x)
  expected = jax.vmap(jax.grad(lambda v: nn.gelu(v, approximate=False)))(x)
  np.testing.assert_allclose(grad, expected, atol=2e-6, rtol=1e-6)
