r"""One prepared command for a GPU or TPU machine: what genjax does on it, as one table.

  python -m bench.accelerator                      # every part, full size
  python -m bench.accelerator --size=tiny          # a CPU check that it all runs (tests)
  python -m bench.accelerator --parts=gpt2,seq2seq --out=accelerator.json

Parts:
  shakespeare  the default-size shakespeare_char (nanoGPT's recipe: 6 layers, 384 wide,
               context 256, batch 64) trained to 5,000 steps through launch.main's loop:
               validation loss (nanoGPT reports 1.4697) and wall time.
  gpt2         a GPT-2-small-shaped train step (12 layers, 768 wide, 12 heads, context
               1,024, vocabulary 50,304) on random tokens, AdamW, in --dtype: tokens/s
               and model FLOP utilization, nanoGPT's estimate (6N + 12 L H Q T FLOPs a
               token) against the chip's peak for that dtype.
  seq2seq      the translation family's default encoder-decoder step on random tokens
               (source and target 64 long): target tokens/s.
  diffusion    mnist_diffusion's U-Net step (v-prediction on 28x28 images): images/s.
Step times are the best of --steps steps timed one by one after two untimed ones.
Peaks come from the vendors' datasheets (dense, no sparsity), by device kind; an unknown
chip's is measured (a square matmul in the dtype) and said to be. On a CPU the run is
float32 and the peak is the measured float32 matmul peak (`bench.peak`).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

from absl import app, flags

_SIZE = flags.DEFINE_enum('size', 'full', ['full', 'tiny'], "'tiny': a seconds-long check.")
_PARTS = flags.DEFINE_list(
  'parts', ['shakespeare', 'gpt2', 'seq2seq', 'diffusion'], 'Which parts to run.'
)
_DTYPE = flags.DEFINE_enum(
  'dtype', None, ['float32', 'bfloat16'], 'Compute dtype; default bfloat16 on an accelerator.'
)
_STEPS = flags.DEFINE_integer('steps', 10, 'Timed steps of each step benchmark (best reported).')
_GPT_BATCH = flags.DEFINE_integer('gpt_batch_per_device', 8, 'gpt2: sequences per device.')
_ATTENTION = flags.DEFINE_string(
  'attention', 'auto', "gpt2: model.attention, 'auto' | 'xla' | 'cudnn' (fused, NVIDIA)."
)
_WORKDIR = flags.DEFINE_string('workdir', None, 'shakespeare: its run (default a temp dir).')
_OUT = flags.DEFINE_string('out', None, 'Also write the table here as JSON.')

# bfloat16 dense matmul peak per chip, FLOP/s (datasheets; float32 is not what they train
# in). Matched in order against jax's device_kind.
PEAKS_BF16 = (
  ('H100 PCIe', 756e12),
  ('H100', 989e12),  # SXM
  ('H200', 989e12),
  ('GH200', 989e12),
  ('A100', 312e12),
  ('L40S', 362e12),
  ('L4', 121e12),
  ('TPU v6', 918e12),
  ('TPU v5p', 459e12),
  ('TPU v5', 197e12),  # v5e ('TPU v5 lite')
  ('TPU v4', 275e12),
)


def chip_peak(dtype) -> tuple[float, str]:
  """(peak FLOP/s of one device in `dtype`, where the figure comes from)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  kind = jax.devices()[0].device_kind
  if jax.default_backend() != 'cpu' and dtype == jnp.bfloat16:
    for name, peak in PEAKS_BF16:
      if name in kind:
        return peak, f'{kind} datasheet, bfloat16 dense'
  from bench.peak import matmul_peak  # pylint: disable=import-outside-toplevel

  sizes = (256, 512) if _SIZE.value == 'tiny' else (1024, 2048, 4096)
  return matmul_peak(sizes, dtype=dtype), f'{kind}, measured {jnp.dtype(dtype).name} matmul'


def best_step_seconds(step, state, batch, steps: int) -> tuple[float, float, object]:
  """(best seconds of one step, compile seconds, state) of a compiled `step`."""
  import jax  # pylint: disable=import-outside-toplevel

  start = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  for _ in range(2):
    state, _ = jax.block_until_ready(compiled(state, batch))
  best = float('inf')
  for _ in range(steps):
    start = time.perf_counter()
    state, _ = jax.block_until_ready(compiled(state, batch))
    best = min(best, time.perf_counter() - start)
  return best, compile_s, state


def _train_step(model_loss, params, config):
  """(step, state) of `model_loss(params, batch, rng)` with the config's optimizer, data
  parallel over every device, as the loop builds it."""
  import jax  # pylint: disable=import-outside-toplevel

  from genjax.step import optim, parallel, state as state_lib, train_step  # pylint: disable=import-outside-toplevel

  tx = optim.make_optimizer(config.optim, config.train.steps)
  mesh = parallel.make_mesh()
  step_fn = train_step.gradient_step(model_loss, tx)
  state = jax.device_put(
    state_lib.create(params, tx, jax.random.PRNGKey(1)), parallel.replicated(mesh)
  )
  return parallel.compile_step(step_fn, mesh, 'jit'), state, mesh


def _init(model, *inputs):
  """The model's variables, out of their logical-axis boxes."""
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel

  return nn.meta.unbox(jax.jit(model.init)(jax.random.PRNGKey(0), *inputs))


def _batch(mesh, **arrays):
  import jax  # pylint: disable=import-outside-toplevel

  from genjax.step import parallel  # pylint: disable=import-outside-toplevel

  return {k: jax.device_put(v, parallel.batch_sharding(mesh)) for k, v in arrays.items()}


def part_shakespeare(rows: list) -> None:
  from experiments import shakespeare_char  # pylint: disable=import-outside-toplevel
  from genjax.run import loop  # pylint: disable=import-outside-toplevel
  from genjax.writers.metrics import read_metrics  # pylint: disable=import-outside-toplevel

  config = shakespeare_char.get_config()
  if _SIZE.value == 'tiny':
    config.model.num_layers, config.model.num_heads, config.model.width = 1, 2, 32
    config.data.block_size, config.data.batch_size = 32, 8
    config.train.steps = config.train.eval_every = 20
    config.train.log_every = 10
    config.eval.num_examples = 256
  config.train.sample_every = 0
  workdir = _WORKDIR.value or tempfile.mkdtemp(prefix='shakespeare_')
  start = time.perf_counter()
  loop.train_and_evaluate(config, workdir)
  wall = time.perf_counter() - start
  test = [r for r in read_metrics(workdir) if r['split'] == 'test']
  m = config.model
  rows.append(
    [
      f'shakespeare_char ({m.num_layers} layers, {m.width} wide, context '
      f'{config.data.block_size}, batch {config.data.batch_size}), {config.train.steps:,} '
      'steps',
      f"val loss **{test[-1]['loss']:.4f}** (nanoGPT 1.4697); {wall:.0f} s of launch.main's "
      f'loop ({workdir})',
    ]
  )


def part_gpt2(rows: list, dtype, peak: float, peak_source: str) -> None:
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from experiments import shakespeare_char  # pylint: disable=import-outside-toplevel
  from genjax.models import DecoderLM  # pylint: disable=import-outside-toplevel
  from genjax.tasks.lm import token_losses  # pylint: disable=import-outside-toplevel

  tiny = _SIZE.value == 'tiny'
  layers, width, heads, context, vocab = (2, 64, 2, 64, 512) if tiny else (12, 768, 12, 1024, 50304)
  model = DecoderLM(
    vocab_size=vocab,
    block_size=context,
    num_layers=layers,
    num_heads=heads,
    width=width,
    dropout=0.0,
    dtype=dtype,
    attention=_ATTENTION.value,
  )
  config = shakespeare_char.get_config()
  config.optim.learning_rate = 6e-4
  batch_size = _GPT_BATCH.value * jax.device_count()
  tokens = np.random.default_rng(0).integers(0, vocab, (batch_size, context + 1), np.int32)
  params = _init(model, tokens[:1, :-1])
  loss = lambda p, batch, rng: (token_losses(model, p, batch['tokens']).mean(), {})
  step, state, mesh = _train_step(loss, params, config)
  seconds, compile_s, _ = best_step_seconds(step, state, _batch(mesh, tokens=tokens), _STEPS.value)
  n = sum(x.size for x in jax.tree.leaves(params)) - context * width  # nanoGPT: no wpe
  per_token = 6 * n + 12 * layers * heads * (width // heads) * context
  achieved = per_token * batch_size * context / seconds
  all_peak = peak * jax.device_count()
  rows.append(
    [
      f'GPT-2-small-shaped step ({layers} layers, {width} wide, context {context}, '
      f'{n / 1e6:.1f}M parameters), batch {batch_size}, {jax.numpy.dtype(dtype).name}, '
      f'attention {_ATTENTION.value}',
      f'{seconds * 1e3:.1f} ms/step, {batch_size * context / seconds:,.0f} tokens/s, '
      f'MFU **{100 * achieved / all_peak:.1f}%** of {all_peak / 1e12:.1f} TFLOP/s '
      f'({peak_source}); compile {compile_s:.1f} s',
    ]
  )


def part_seq2seq(rows: list, dtype) -> None:
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel

  from genjax.models import EncoderDecoder  # pylint: disable=import-outside-toplevel
  from genjax.tasks import experiment_config  # pylint: disable=import-outside-toplevel

  config = experiment_config('seq2seq', 'multi30k')
  m = config.model
  tiny = _SIZE.value == 'tiny'
  width, layers, vocab, length = (32, 1, 256, 16) if tiny else (m.width, None, 8000, 64)
  model = EncoderDecoder(
    vocab_size=vocab,
    max_length=length,
    num_encoder_layers=layers or m.num_encoder_layers,
    num_decoder_layers=layers or m.num_decoder_layers,
    num_heads=m.num_heads,
    width=width,
    mlp_ratio=m.mlp_ratio,
    dropout=0.0,
    dtype=dtype,
  )
  batch_size = (8 if tiny else 128) * jax.device_count()
  rng = np.random.default_rng(0)
  source = rng.integers(1, vocab, (batch_size, length), np.int32)
  target = rng.integers(1, vocab, (batch_size, length + 1), np.int32)
  params = _init(model, source[:1], target[:1, :-1])

  def loss(p, batch, rng):
    logits = model.apply(p, batch['source'], batch['target'][:, :-1])
    xent = optax.softmax_cross_entropy_with_integer_labels(logits, batch['target'][:, 1:])
    return xent.mean(), {}

  step, state, mesh = _train_step(loss, params, config)
  batch = _batch(mesh, source=source, target=target)
  seconds, compile_s, _ = best_step_seconds(step, state, batch, _STEPS.value)
  rows.append(
    [
      f'encoder-decoder step ({model.num_encoder_layers}+{model.num_decoder_layers} layers, '
      f'{width} wide, source and target {length}), batch {batch_size}, '
      f'{jax.numpy.dtype(dtype).name}',
      f'{seconds * 1e3:.1f} ms/step, {batch_size * length / seconds:,.0f} target tokens/s; '
      f'compile {compile_s:.1f} s',
    ]
  )


def part_diffusion(rows: list) -> None:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from experiments import mnist_diffusion  # pylint: disable=import-outside-toplevel
  from genjax.tasks import diffusion, diffusion_objectives as objectives  # pylint: disable=import-outside-toplevel
  from genjax.tasks.base import per_example_keys  # pylint: disable=import-outside-toplevel

  config = mnist_diffusion.get_config()
  if _SIZE.value == 'tiny':
    config.model.channels, config.model.num_groups = 8, 4
    config.model.channel_mults, config.model.attention_resolutions = (1, 2), ()
  model = diffusion.unet_of(config, (28, 28, 1))
  schedule = diffusion.schedule_of(config.diffusion)
  batch_size = (8 if _SIZE.value == 'tiny' else 256) * jax.device_count()
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (batch_size, 28, 28, 1)).astype(np.float32)
  labels = rng.integers(0, 10, batch_size).astype(np.int32)
  index = np.arange(batch_size, dtype=np.int32)
  params = _init(model, images[:1], np.zeros((1,), np.float32), labels[:1])

  def loss(p, batch, rng):
    noise_keys, _ = objectives.split(per_example_keys(rng, batch['index']))
    denoise = lambda z, t, y: model.apply(p, z, t, y)
    value = objectives.loss('v', denoise, batch['x'], noise_keys, batch['label'], schedule=schedule)
    return jnp.mean(value), {}

  step, state, mesh = _train_step(loss, params, config)
  batch = _batch(mesh, x=images, label=labels, index=index)
  seconds, compile_s, _ = best_step_seconds(step, state, batch, _STEPS.value)
  rows.append(
    [
      f"mnist_diffusion's U-Net step ({config.model.channels} base channels), batch "
      f'{batch_size}, float32',
      f'{seconds * 1e3:.1f} ms/step, {batch_size / seconds:,.0f} images/s; '
      f'compile {compile_s:.1f} s',
    ]
  )


def main(argv):
  del argv
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  on_cpu = jax.default_backend() == 'cpu'
  dtype = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}[
    _DTYPE.value or ('float32' if on_cpu else 'bfloat16')
  ]
  device = f'{jax.device_count()} x {jax.devices()[0].device_kind} ({jax.default_backend()})'
  print(f'devices: {device}, jax {jax.__version__}, python {sys.version.split()[0]}', flush=True)
  rows = []
  parts = {
    'shakespeare': lambda: part_shakespeare(rows),
    'gpt2': lambda: part_gpt2(rows, dtype, *chip_peak(dtype)),
    'seq2seq': lambda: part_seq2seq(rows, dtype),
    'diffusion': lambda: part_diffusion(rows),
  }
  unknown = sorted(set(_PARTS.value) - set(parts))
  if unknown:
    raise app.UsageError(f'--parts: {unknown} are not among {sorted(parts)}.')
  for name in _PARTS.value:
    parts[name]()
    print(': '.join(rows[-1]), flush=True)
  table = ['| what | measured |', '|---|---|', *(f'| {a} | {b} |' for a, b in rows)]
  print(f'\n{device}\n' + '\n'.join(table), flush=True)
  if _OUT.value:
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    with open(_OUT.value, 'w') as f:
      title = f'genjax on {device}'
      json.dump({'title': title, 'columns': ['what', 'measured'], 'rows': rows}, f, indent=2)


if __name__ == '__main__':
  app.run(main)
