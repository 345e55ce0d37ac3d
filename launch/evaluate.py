r"""Evaluates a trained experiment on its full test set; writes WORKDIR/eval.json.

  python -m launch.evaluate --workdir=runs/mnist_vae                       # nll (IWAE k=1000)
  python -m launch.evaluate --workdir=runs/mnist_vae --eval=iwae_samples=5000
  python -m launch.evaluate --workdir=runs/de_en --beam=5 --alpha=0.6 --average_last=10
  python -m launch.evaluate --workdir=runs/mnist_diffusion --sample=steps=20 --sample=guidance=1

What it reports is the family's (its `evaluate`): VAE `nll`, `elbo`, `bits_per_dim`; AE
`mse`, `psnr`, `pca_mse`, `noisy_psnr`, `denoised_psnr`; both `anomaly_auroc` where the
data has anomalies; GAN `fid`, `inception_score`, ...; LM `loss`, `bits_per_char`;
encoder-decoders `bleu`, `sacrebleu` (with its signature), `chrf`, or `bleu4` and
`rouge_l` for summaries.
"""

import json
import os
import time

import jax
from absl import app, flags, logging

from genjax import api, config as config_lib
from genjax.config import ConfigError
from genjax.data import datasets
from launch import common

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained experiment\'s workdir.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step; default the latest.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the evaluation\'s own randomness.')
_EVAL = flags.DEFINE_multi_string(
  'eval',
  [],
  'FIELD=VALUE: override a field of the run\'s config.eval for this evaluation '
  '(repeatable), e.g. --eval=iwae_samples=5000.',
)
_SAMPLE = flags.DEFINE_multi_string(
  'sample',
  [],
  'FIELD=VALUE: override a field of the run\'s config.sample (how iterative samplers '
  'draw: steps, guidance, guidance_interval, sampler, eta) for this evaluation (repeatable),'
  ' e.g. --sample=guidance_interval=0.1,0.7.',
)
_BEAM = flags.DEFINE_integer('beam', None, 'Decoding families: beam size (--eval=beam_size=N).')
_ALPHA = flags.DEFINE_float('alpha', None, 'Decoding families: length penalty (--eval=alpha=A).')
_AVERAGE_LAST = flags.DEFINE_integer(
  'average_last', None, 'Evaluate the mean of the last N checkpoints\' parameters.'
)
flags.mark_flags_as_required(['workdir'])


def _parse(text: str, current):
  """`text` as a value of `current`'s type; a tuple's items comma-separated (0.1,0.8)."""
  if isinstance(current, bool):
    return text.lower() in ('1', 'true')
  if isinstance(current, tuple):
    item = type(current[0]) if current else str
    return tuple(item(part) for part in text.strip('()').split(',') if part.strip())
  return type(current)(text)


def section_with(config, section: str, overrides: list[str]):
  """config.<section> with `FIELD=VALUE` overrides, each parsed as the field's type."""
  if section not in config:
    raise ConfigError(f'--{section}: this run\'s {config.task!r} config has no {section} fields.')
  fields = config[section].copy_and_resolve_references()
  for item in overrides:
    field, sep, text = item.partition('=')
    if not sep or field not in fields:
      raise ConfigError(
        f'--{section}={item!r}: give FIELD=VALUE with FIELD one of {sorted(fields.keys())}.'
      )
    kind = type(fields[field])
    try:
      value = _parse(text, fields[field])
    except ValueError as e:
      raise ConfigError(f'--{section}={item!r}: {text!r} is not a {kind.__name__}.') from e
    config_lib.set_path(fields, field, value)
  return fields


def eval_config_with(config, overrides: list[str]):
  """config.eval with `FIELD=VALUE` overrides, each parsed as the field's type."""
  return section_with(config, 'eval', overrides)


def config_with_sample(workdir: str, overrides: list[str]):
  """The run's config with --sample overrides; None (the run's own) without any."""
  if not overrides:
    return None
  config = api.read_config(workdir)
  sample = section_with(config, 'sample', overrides)
  with config.unlocked():
    config.sample = sample
  return config


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  said = common.cpu_devices_per_core(None)  # before JAX starts: samplers use every core
  if said:
    logging.info(said)
  with common.user_errors_exit():
    if _AVERAGE_LAST.value and _STEP.value is not None:
      raise ConfigError('--average_last and --step: give one (averaging ends at the latest).')
    config = config_with_sample(_WORKDIR.value, _SAMPLE.value)
    if _AVERAGE_LAST.value:
      config, task, state = api.load_averaged_state(_WORKDIR.value, _AVERAGE_LAST.value, config)
    else:
      config, task, state = api.load_state(_WORKDIR.value, _STEP.value, config)
    shorthand = [f'beam_size={_BEAM.value}'] if _BEAM.value is not None else []
    shorthand += [f'alpha={_ALPHA.value}'] if _ALPHA.value is not None else []
    eval_config = eval_config_with(config, shorthand + _EVAL.value)
    data = datasets.load(config.data, workdir=_WORKDIR.value)
    start = time.perf_counter()
    results = task.evaluate(
      task.inference_variables(state),
      data,
      jax.random.PRNGKey(_SEED.value),
      eval_config=eval_config,
    )
    results = {
      'step': int(state.step),
      **({'average_last': _AVERAGE_LAST.value} if _AVERAGE_LAST.value else {}),
      **results,
      'eval_seconds': round(time.perf_counter() - start, 2),
    }
    path = os.path.join(_WORKDIR.value, 'eval.json')
    with open(path + '.tmp', 'w') as f:
      json.dump(results, f, indent=2)
    os.replace(path + '.tmp', path)
    logging.info('Wrote %s', path)
    print(json.dumps(results, indent=2))


if __name__ == '__main__':
  app.run(main, flags_parser=common.parse_flags)
