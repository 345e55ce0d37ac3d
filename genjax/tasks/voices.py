"""The voices family: the decoder LM (`genjax.models.DecoderLM`) on Bach's four voices as a
token stream (`genjax.data.jsb_chorales`: soprano, alto, tenor, bass per 16th step).

Training is the lm family's next-token loss on windows that start at a step, with
`data.transpose` > 0 shifting each window's pitches by a random number of semitones in
[-transpose, transpose] (off for the benchmark figure: the published figures the config
compares with come from untransposed data).

`launch.evaluate` reports the NLL per token of the validation and the published test
split (`valid_nll_per_token`, `test_nll_per_token`), every pitch, rest and hold token
of every chorale scored once, each with at least half a context before it (windows slide
by half a context; the first of a chorale starts at its start). It then composes
`eval.sample_pieces` pieces and sets their musical statistics
(`genjax.evaluation.music_stats`: share of notes in the key, voice crossings, parallel
fifths and octaves, ranges) beside the test chorales'.

Views ('sample' is what training writes; 'compose' and 'harmonize' take `--num`):
- 'compose': pieces of `sample.steps` 16th steps from nothing but the start step.
- 'harmonize': keeps a soprano line exactly and writes alto, tenor and bass under it;
  `--melody=test:12` (a chorale of a split, Bach's own harmony written after the
  harmonizations for comparison) or a one-voice MIDI file.
Each piece is a MIDI file, a WAV file and a piano-roll PNG (`genjax.writers.music`).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.data import jsb_chorales, jsb_files, midi
from genjax.evaluation import music_stats
from genjax.tasks import lm
from genjax.tasks.base import Task, View, per_example_keys
from genjax.tasks.voice_sampling import sample_stream_jit
from genjax.writers.music import Music

_TRANSPOSE_SALT = 0x7A5E  # folded into the step key: never the dropout masks' keys
STEP = len(jsb_chorales.VOICES)  # tokens per time step


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  if c.data.name != 'jsb_voices':
    raise ConfigError(
      f'The voices family trains on the four-voice stream (data.name=jsb_voices), not '
      f'{c.data.name}.'
    )
  lm.add_config_fields(c)  # the model, optimizer and sampling fields of the decoder LM
  config_lib.add_fields(
    c,
    {
      'sample.num_pieces': 4,  # what training writes every sample_every steps
      'sample.steps': 128,  # 16th steps a composed piece lasts (8 bars of 4/4)
      'eval.sample_pieces': 32,  # pieces launch.evaluate composes for the statistics
      'eval.sample_steps': 128,
    },
  )
  c.sample.temperature = 1.0
  c.sample.top_k = 0
  c.train.sample_every = 1_000


def piece_windows(stream: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
  """(windows int32 [W, block_size + 1], scored bool [W, block_size]) over one chorale's
  stream: windows start at 0 and every block_size // 2 tokens (a step, as block_size %
  8 == 0); each target from index STEP on (after the start step) is scored in exactly
  one window, the first with every target it has, the others with their last half."""
  stride = block_size // 2
  windows, scored = [], []
  done = STEP  # targets before this index are scored (or, the start step, never)
  start = 0
  while done < len(stream):
    window = np.zeros(block_size + 1, np.int32)
    piece = stream[start : start + block_size + 1]
    window[: len(piece)] = piece
    target = start + 1 + np.arange(block_size)  # the stream index each output predicts
    scored.append((target >= done) & (target < len(stream)))
    windows.append(window)
    done = start + block_size + 1
    start += stride
  return np.stack(windows), np.stack(scored)


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  del runs
  if 'tokens' not in spec or config.data.name != 'jsb_voices':
    raise ConfigError(
      f'The voices family needs the four-voice stream (data.name=jsb_voices), not '
      f'{config.data.name}.'
    )
  vocab = jsb_chorales.vocabulary(config.data)
  if spec['tokens'].num_values != vocab.size:
    raise ConfigError(
      f'The data has {spec["tokens"].num_values} token values, the vocabulary of this '
      f'config {vocab.size}: data.transpose or data.hold_tokens differ from the run\'s.'
    )
  model = lm.make_model(config.model, vocab.size)
  multiple = 8 * config.data.start_every  # half-window slides keep the training beat
  if model.block_size % multiple:
    raise ConfigError(
      f'config.data.block_size must be a multiple of 8 * data.start_every = {multiple}, got '
      f'{model.block_size}.'
    )
  largest_shift = int(config.data.transpose)
  seconds = jsb_chorales.seconds_per_step('16th')

  def init(rng, batch):
    return model.init(rng, jnp.asarray(batch['tokens'])[:, :-1]), {}

  def transpose(tokens, rng, index):
    shifts = jax.vmap(lambda key: jax.random.randint(key, (), -largest_shift, largest_shift + 1))(
      per_example_keys(jax.random.fold_in(rng, _TRANSPOSE_SALT), index)
    )
    # The vocabulary is the data's range widened by `transpose`: no shift leaves it.
    return jnp.where(tokens >= vocab.FIRST_PITCH, tokens + shifts[:, None], tokens)

  def loss(params, batch, rng):
    tokens = batch['tokens']
    if largest_shift:
      tokens = transpose(tokens, rng, batch['index'])
    losses = lm.token_losses(model, params, tokens, train=True, rng=rng, index=batch['index'])
    return jnp.mean(losses), {}

  def eval_metrics(params, batch, rng):
    del rng
    return {'loss': jnp.mean(lm.token_losses(model, params, batch['tokens']), axis=-1)}

  scored_sum = jax.jit(
    lambda params, windows, scored: jnp.sum(lm.token_losses(model, params, windows) * scored)
  )

  def nll_per_token(params, pieces, batch_size: int) -> tuple[float, int]:
    parts = [piece_windows(vocab.encode(p), model.block_size) for p in pieces]
    windows = np.concatenate([w for w, _ in parts])
    scored = np.concatenate([s for _, s in parts])
    total = 0.0
    for start in range(0, len(windows), batch_size):
      w, s = windows[start : start + batch_size], scored[start : start + batch_size]
      pad = batch_size - len(w)  # one shape: compiled once
      if pad:
        w = np.concatenate([w, np.zeros((pad, w.shape[1]), w.dtype)])
        s = np.concatenate([s, np.zeros((pad, s.shape[1]), bool)])
      total += float(scored_sum(params, w, s))
    count = int(scored.sum())
    return total / count, count

  def generate(params, rng, melodies: np.ndarray, temperature, top_k, top_p) -> list:
    """Pieces int [T, 4] under `melodies` int [B, T] (-2: free, so composed)."""
    num, steps = melodies.shape
    soprano = np.where(melodies == -2, -1, melodies)
    forced = np.stack(
      [vocab.encode(np.stack([s, *[np.full(steps, -1)] * 3], axis=1)) for s in soprano]
    )
    known = np.zeros_like(forced, bool)
    known[:, :STEP] = True  # the start step
    known[:, STEP::STEP] = melodies != -2  # the given soprano tokens
    tokens = sample_stream_jit(
      model,
      params,
      jnp.asarray(forced),
      jnp.asarray(known),
      rng,
      banned=vocab.START,
      temperature=temperature,
      top_k=top_k,
      top_p=top_p,
    )
    return [vocab.decode(t[STEP:]) for t in np.asarray(tokens)]

  def compose(params, rng, num, steps, temperature, top_k, top_p) -> list:
    return generate(params, rng, np.full((num, steps), -2), temperature, top_k, top_p)

  def evaluate(params, data, rng, eval_config=config.eval):
    results = {}
    pieces = data.extras['pieces']
    for split, name in (('test', 'valid'), ('final_test', 'test')):
      results[f'{name}_nll_per_token'], results[f'{name}_tokens'] = nll_per_token(
        params, pieces[split], eval_config.batch_size
      )
    if eval_config.sample_pieces:
      sampled = compose(
        params,
        rng,
        eval_config.sample_pieces,
        eval_config.sample_steps,
        config.sample.temperature,
        config.sample.top_k,
        config.sample.top_p,
      )
      results['samples'] = music_stats.statistics(sampled)
      results['test_set'] = music_stats.statistics(list(pieces['final_test']))
    return results

  sampling = ('temperature', 'top_k', 'top_p')

  def view_compose(
    params,
    arrays,
    rng,
    num=None,
    *,
    temperature=config.sample.temperature,
    top_k=config.sample.top_k,
    top_p=config.sample.top_p,
  ):
    """`num` (default sample.num_pieces) pieces of sample.steps steps."""
    del arrays
    num = config.sample.num_pieces if num is None else num
    pieces = compose(params, rng, num, config.sample.steps, temperature, top_k, top_p)
    return Music(pieces, seconds, steps_per_quarter=4)

  def view_sample(params, arrays, rng, num, **options):
    """What training writes: 'compose' at its default count, whatever `num` the loop asks."""
    del num
    return view_compose(params, arrays, rng, None, **options)

  def view_harmonize(
    params,
    arrays,
    rng,
    num=None,
    *,
    melody='test:0',
    temperature=config.sample.temperature,
    top_k=config.sample.top_k,
    top_p=config.sample.top_p,
  ):
    """`num` (default 1) harmonizations of `melody` ('split:index' or a MIDI file)."""
    del arrays
    num = 1 if num is None else num
    line, original = read_melody(melody, config.data.dir, vocab)
    pieces = generate(params, rng, np.tile(line, (num, 1)), temperature, top_k, top_p)
    if not all(np.array_equal(p[:, 0], line) for p in pieces):
      raise AssertionError('a harmonization changed the melody')  # the sampler keeps it
    names = [f'harmonization_{i}' for i in range(num)]
    if original is not None:
      pieces, names = pieces + [original], names + ['bach']
    return Music(pieces, seconds, names, steps_per_quarter=4)

  return Task(
    name='voices',
    model=model,
    init=init,
    loss=loss,
    eval_metrics=eval_metrics,
    evaluate=evaluate,
    views={
      'sample': View(view_sample, options=sampling),
      'compose': View(view_compose, options=('num', *sampling)),
      'harmonize': View(view_harmonize, options=('num', 'melody', *sampling)),
    },
    default_view='sample',
  )


def read_melody(melody: str, data_dir, vocab) -> tuple[np.ndarray, np.ndarray | None]:
  """(soprano int [T], -1 rest; the chorale it came from or None) from 'split:index' of
  the four-voice data or a one-voice MIDI file."""
  split, _, index = melody.partition(':')
  if split in jsb_files.SPLITS and not os.path.exists(melody):
    chorales = jsb_files.read_voices(data_dir)[split]
    if not index.isdigit() or int(index) >= len(chorales):
      raise ConfigError(
        f'--melody={melody}: the {split} split has chorales 0..{len(chorales) - 1}; '
        f'give one as {split}:N.'
      )
    chorale = np.asarray(chorales[int(index)], np.int64)
    return chorale[:, 0], chorale
  if not os.path.exists(melody):
    raise ConfigError(
      f'--melody={melody}: no such file; give a one-voice MIDI file or SPLIT:N with SPLIT '
      f'one of {jsb_files.SPLITS} (e.g. test:12).'
    )
  line = midi.read_melody(melody, jsb_files.STEPS_PER_QUARTER['16th'], vocab.low, vocab.high)
  return line, None
