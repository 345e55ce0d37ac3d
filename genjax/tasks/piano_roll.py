"""The piano-roll family: `PianoRollTransformer` trained on whole chorales, scored as the
polyphonic-music benchmark scores them.

The loss is the negative log-likelihood of each real time step's notes, summed over the
88 piano keys, averaged over each chorale's steps and then over the chorales of the
batch (nats per time step). `launch.evaluate`
reports that over every step of the validation and the published test split
(`valid_nll_per_step`, `test_nll_per_step`: total over total, as Boulanger-Lewandowski et
al. 2012 and the papers after it do), exactly: every chorale fits the model's positions
at the benchmark's quarter-note resolution, so nothing is windowed.

`data.transpose` > 0 shifts each training chorale by a random number of semitones within
that bound that keeps its notes on the keyboard (off for the benchmark figure: the
published figures train without it). Views: 'sample' is what training writes
(`sample.num_pieces` pieces of `sample.steps` steps), 'compose' draws `--num` pieces;
each piece becomes a MIDI file, a WAV file and a piano-roll PNG
(`genjax.writers.music.Music`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.data import jsb_chorales, jsb_files
from genjax.models.piano_roll import PianoRollTransformer, frame_log_likelihood, sample_frames
from genjax.tasks.base import Task, View, per_example_keys
from genjax.writers.music import Music

_TRANSPOSE_SALT = 0x7A5E  # folded into the step key: never the dropout masks' keys


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  if c.data.name != 'jsb_chorales':
    raise ConfigError(
      f'The piano_roll family trains on piano rolls (data.name=jsb_chorales), not {c.data.name}.'
    )
  config_lib.add_fields(
    c,
    {
      # genjax.models.PianoRollTransformer's arguments, but block_size (data.max_steps).
      'model.num_layers': 4,
      'model.num_heads': 4,
      'model.width': 256,
      'model.mlp_ratio': 4,
      'model.dropout': 0.1,
      'model.output': 'nade',  # 'nade' (keys modelled jointly) | 'bernoulli' (independently)
      'model.nade_hidden': 128,
      'model.dropout_bits': 8,
      # What training writes every sample_every steps (and the 'sample' view draws).
      'sample.num_pieces': 4,
      'sample.steps': 64,  # time steps a composed piece lasts
      'sample.temperature': 1.0,
    },
  )
  c.model.block_size = c.data.get_ref('max_steps')
  c.optim.name = 'adamw'
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 100
  c.optim.weight_decay = 0.1
  c.optim.decay_only_matrices = True
  c.optim.grad_clip_norm = 1.0
  c.eval.batch_size = 32
  c.eval.num_examples = 1_000  # every validation chorale


def make_model(model_config: ml_collections.ConfigDict) -> PianoRollTransformer:
  try:
    return PianoRollTransformer(**model_config.to_dict())
  except ValueError as e:  # name the config fields, not just the module's arguments
    raise ConfigError(f'config.model: {e}') from None


def transpose(frames: jax.Array, keys: jax.Array, largest: int) -> jax.Array:
  """Each example [T, K] shifted by a random whole number of keys in [-largest, largest]
  that keeps all its notes on the keyboard (a silent example stays put)."""
  num_keys = frames.shape[-1]

  def one(frames, key):
    used = jnp.any(frames > 0, axis=0)
    lowest = jnp.argmax(used)
    highest = num_keys - 1 - jnp.argmax(used[::-1])
    down = jnp.where(used.any(), jnp.minimum(largest, lowest), 0)
    up = jnp.where(used.any(), jnp.minimum(largest, num_keys - 1 - highest), 0)
    shift = jax.random.randint(key, (), -down, up + 1)
    return jnp.roll(frames, shift, axis=-1)  # nothing wraps: the shift stays in range

  return jax.vmap(one)(frames, keys)


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  del runs
  if 'roll' not in spec:
    raise ConfigError(
      f'The piano_roll family needs piano rolls (data.name=jsb_chorales); '
      f'{config.data.name} has none.'
    )
  model = make_model(config.model)
  largest_shift = int(config.data.get('transpose', 0))
  seconds = jsb_chorales.seconds_per_step(config.data.resolution)
  per_quarter = jsb_files.STEPS_PER_QUARTER[config.data.resolution]

  def init(rng, batch):
    return model.init(rng, jnp.asarray(batch['roll'][:1])), {}

  def step_log_likelihoods(params, frames, train=False, rng=None, index=None):
    if train and model.dropout > 0:
      logits = model.apply(params, frames, train=True, rngs={'dropout': rng}, example_ids=index)
    else:
      logits = model.apply(params, frames)
    return frame_log_likelihood(logits, frames)  # [B, T]

  def loss(params, batch, rng):
    frames, mask = batch['roll'], batch['frame_mask']
    if largest_shift:
      keys = per_example_keys(jax.random.fold_in(rng, _TRANSPOSE_SALT), batch['index'])
      frames = transpose(frames, keys, largest_shift)
    ll = step_log_likelihoods(params, frames, True, rng, batch['index'])
    # Each chorale's NLL per step, then their mean: every device's share of the batch
    # then weighs what it does on one device (a ratio of batch totals would not).
    return jnp.mean(-jnp.sum(ll * mask, -1) / jnp.maximum(jnp.sum(mask, -1), 1)), {}

  def eval_metrics(params, batch, rng):
    """'loss': each chorale's NLL per step (the loop averages chorales; evaluate weighs
    steps)."""
    del rng
    ll = step_log_likelihoods(params, batch['roll'])
    mask = batch['frame_mask']
    return {'loss': -jnp.sum(ll * mask, -1) / jnp.maximum(jnp.sum(mask, -1), 1)}

  totals = jax.jit(
    lambda params, frames, mask: -jnp.sum(step_log_likelihoods(params, frames) * mask)
  )

  def nll_per_step(params, arrays, batch_size: int) -> tuple[float, int]:
    total, steps = 0.0, int(arrays['frame_mask'].sum())
    for start in range(0, len(arrays['roll']), batch_size):
      frames = arrays['roll'][start : start + batch_size]
      mask = arrays['frame_mask'][start : start + batch_size]
      pad = batch_size - len(frames)  # one shape: compiled once
      if pad:
        frames = np.concatenate([frames, np.zeros((pad, *frames.shape[1:]), frames.dtype)])
        mask = np.concatenate([mask, np.zeros((pad, *mask.shape[1:]), bool)])
      total += float(totals(params, frames, mask))
    return total / steps, steps

  def evaluate(params, data, rng, eval_config=config.eval):
    """NLL per time step (nats, summed over 88 keys) over every step of each split."""
    del rng
    results = {}
    for split, name in (('test', 'valid'), ('final_test', 'test')):
      arrays = data.split(split)
      if arrays:
        results[f'{name}_nll_per_step'], results[f'{name}_steps'] = nll_per_step(
          params, arrays, eval_config.batch_size
        )
    return results

  compose = jax.jit(
    lambda params, rng, num, length, temperature: sample_frames(
      model, params, rng, num, length, temperature
    ),
    static_argnums=(2, 3),
  )

  def pieces(params, rng, num, steps, temperature) -> Music:
    if steps > model.block_size:
      raise ConfigError(f'{steps} steps exceed the model\'s {model.block_size} positions.')
    rolls = np.asarray(compose(params, rng, num, steps, temperature))
    return Music(list(rolls), seconds, steps_per_quarter=per_quarter)

  def view_compose(params, arrays, rng, num=None, *, temperature=config.sample.temperature):
    """`num` (default sample.num_pieces) pieces of sample.steps steps."""
    del arrays
    num = config.sample.num_pieces if num is None else num
    return pieces(params, rng, num, config.sample.steps, temperature)

  def view_sample(params, arrays, rng, num, **options):
    """What training writes: 'compose' at its default count, whatever `num` the loop asks."""
    del num
    return view_compose(params, arrays, rng, None, **options)

  return Task(
    name='piano_roll',
    model=model,
    init=init,
    loss=loss,
    eval_metrics=eval_metrics,
    evaluate=evaluate,
    views={
      'sample': View(view_sample, options=('temperature',)),
      'compose': View(view_compose, options=('num', 'temperature')),
    },
    default_view='sample',
  )
