"""The config schema every experiment shares, and its validation.

Experiments start from `base_config()` and fill in their family's fields. Every field
exists (with a default of the right type) before flags are parsed, so
`ml_collections.config_flags` can reject unknown fields and wrong types at the command
line, before any compute and before anything is written.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

import ml_collections

STRATEGIES = ('jit', 'pmap', 'fsdp')
OPTIMIZERS = ('adam', 'adamw', 'sgd', 'lamb')
SCHEDULES = ('constant', 'cosine', 'linear')

# Fields that may change when a run resumes: how long it runs and how chatty it is.
# Anything else changed under an existing workdir would silently make a different
# experiment, so the loop refuses unless told otherwise.
RESUMABLE_CHANGES = (
  'train.steps',
  'train.log_every',
  'train.eval_every',
  'train.checkpoint_every',
  'train.sample_every',
  'train.keep_checkpoints',
  'train.steps_per_call',
  'eval.*',
  'data.dir',
  'data.prefetch',
  'parallel.*',  # how the same experiment is laid out on the devices (elastic resume)
  'model.remat',  # which activations are kept for the backward pass: the same numbers
)

# What a field's old values mean since its type changed, so that a run written before
# loads and resumes as it was: model.remat was a bool before its policies.
UPGRADED_VALUES = {'model.remat': {False: 'none', True: 'full'}}


def upgraded(field: str, value: Any) -> Any:
  """`value` of `field` as a config written today holds it."""
  table = UPGRADED_VALUES.get(field, {})
  return table.get(value, value) if isinstance(value, (bool, int, str)) else value


def base_config() -> ml_collections.ConfigDict:
  """The shared fields with defaults; families add theirs under model/data/eval."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task = ''  # the family (genjax.tasks.FAMILIES); start from genjax.tasks.experiment_config
  # A trained run's workdir whose parameters (not its optimizer) this run starts from where
  # names and shapes match, its tokenizers copied (genjax.run.init_from); '' = none.
  c.init_from = ''

  c.data = ml_collections.ConfigDict()
  c.data.name = ''  # a registered dataset (genjax.data.datasets.DATASETS)
  c.data.dir = ''  # '' -> $GENJAX_DATA_DIR, else ~/.cache/genjax
  c.data.batch_size = 128  # global batch, split over all devices of all hosts
  c.data.prefetch = 2  # batches placed on device ahead of the step

  c.model = ml_collections.ConfigDict()  # the model's constructor arguments, nothing else
  c.loss = ml_collections.ConfigDict()  # the family's loss settings (weights, kinds)

  c.optim = ml_collections.ConfigDict()
  c.optim.name = 'adam'  # one of OPTIMIZERS
  c.optim.learning_rate = 1e-3  # peak learning rate
  c.optim.schedule = 'cosine'  # one of SCHEDULES; decay after warmup
  c.optim.warmup_steps = 0
  c.optim.end_learning_rate_factor = 0.0  # final lr = learning_rate * factor
  c.optim.weight_decay = 0.0  # decoupled (adamw/lamb) decay
  c.optim.grad_clip_norm = 0.0  # global-norm clipping; 0 disables
  # Weight decay on weight matrices and embeddings only, not biases and normalisation
  # scales (GPT-2/nanoGPT); False decays everything.
  c.optim.decay_only_matrices = False
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8

  c.train = ml_collections.ConfigDict()
  c.train.steps = 10_000
  c.train.log_every = 100  # progress line + train metrics
  c.train.eval_every = 1_000  # test metrics on eval.num_examples; 0 disables
  c.train.checkpoint_every = 1_000
  c.train.sample_every = 1_000  # PNG grid under samples/; 0 disables
  c.train.keep_checkpoints = 3
  # Steps per compiled call (a lax.scan over stacked batches): the host dispatches once per
  # call. Same numbers as 1; calls end at log/eval/sample/checkpoint steps.
  c.train.steps_per_call = 1
  # > 0: an exponential moving average of the parameters (warmed up as (1+t)/(10+t) until
  # it reaches this decay), which samples, evaluation and genjax.load then use.
  c.train.ema_decay = 0.0
  # Micro-batches per step: gradients of data.batch_size / N examples at a time, summed,
  # then one update: the same parameters as one step of the whole batch, in less memory.
  c.train.grad_accum_steps = 1

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 500
  c.eval.num_examples = 2_000  # test examples scored during training (evaluate uses all)

  c.parallel = ml_collections.ConfigDict()
  # One of STRATEGIES: 'jit' and 'pmap' keep the whole state on every device; 'fsdp'
  # splits each array of at least fsdp_min_size elements over them (genjax.step.sharding).
  c.parallel.strategy = 'jit'
  c.parallel.fsdp_min_size = 2**14
  # The device mesh, 'AXIS:SIZE,...' over 'data' and 'model' (tensor parallelism for the
  # Transformer families' annotated weights), e.g. 'data:2,model:2'; '' = every device on
  # 'data'. Fewer devices than the machine has run on the first ones.
  c.parallel.mesh = ''
  # (logical axis name, mesh axis): where the Transformer families' annotated weights are
  # split (genjax.models.transformer names them); a name without a pair, or a mesh axis
  # this mesh lacks, leaves its axis whole. The heads, MLP width and vocabulary over
  # 'model' is Megatron's tensor parallelism.
  c.parallel.logical_axis_rules = (('heads', 'model'), ('mlp', 'model'), ('vocab', 'model'))
  # XLA CPU devices of a CPU run (launch.main): 0 = one per core. A small step can be
  # faster on one device than split over several (bench.throughput times both).
  c.parallel.cpu_devices = 0
  _declare(flatten(c))
  return c


# Every field's declared default(s), from base_config and add_fields. A field added to the
# framework after a run was written is absent from that run's config.json; it defaults to
# the behaviour the run had (the convention for a new field), so resuming at that default
# is no change (config_differences).
_DECLARED: dict[str, list[Any]] = {}


def _declare(fields: dict[str, Any]) -> None:
  for dotted, value in fields.items():
    defaults = _DECLARED.setdefault(dotted, [])
    if value not in defaults:
      defaults.append(value)


class ConfigError(ValueError):
  """A config value that cannot work; the message says which field and why."""


def _check_choice(value: Any, name: str, allowed: Iterable[str]) -> None:
  allowed = tuple(allowed)
  if value not in allowed:
    raise ConfigError(
      f'config.{name}={value!r} is not one of {allowed}; pass --config.{name}={allowed[0]} '
      '(or another of them).'
    )


def validate(config: ml_collections.ConfigDict) -> None:
  """Fails early, with the field's name, on values flags cannot type-check."""
  _check_choice(config.parallel.strategy, 'parallel.strategy', STRATEGIES)
  for section in ('optim', 'd_optim'):  # d_optim: a GAN discriminator's own optimizer
    if section in config:
      _check_choice(config[section].name, f'{section}.name', OPTIMIZERS)
      _check_choice(config[section].schedule, f'{section}.schedule', SCHEDULES)
  positive = {
    'data.batch_size': config.data.batch_size,
    'train.steps': config.train.steps,
    'train.log_every': config.train.log_every,
    'train.checkpoint_every': config.train.checkpoint_every,
    'train.keep_checkpoints': config.train.keep_checkpoints,
    'train.steps_per_call': config.train.steps_per_call,
    'train.grad_accum_steps': config.train.grad_accum_steps,
    'eval.batch_size': config.eval.batch_size,
    'optim.learning_rate': config.optim.learning_rate,
  }
  for name, value in positive.items():
    if not value > 0:
      raise ConfigError(f'config.{name} must be > 0, got {value!r}; pass --config.{name}=N > 0.')
  for name in (
    'train.eval_every',
    'train.sample_every',
    'optim.warmup_steps',
    'optim.grad_clip_norm',
    'optim.weight_decay',
  ):
    if get_path(config, name) < 0:
      raise ConfigError(
        f'config.{name} must be >= 0, got {get_path(config, name)!r}; pass '
        f'--config.{name}=0 (off) or more.'
      )
  if not 0.0 <= config.train.ema_decay < 1.0:
    raise ConfigError(
      f'config.train.ema_decay={config.train.ema_decay!r} must be in [0, 1) '
      '(0 keeps no EMA; 0.999 is usual): pass --config.train.ema_decay=0.999.'
    )
  for section in ('optim', 'd_optim'):
    if section in config and _warmup_too_long(config, section):
      raise ConfigError(
        f'config.{section}.warmup_steps={config[section].warmup_steps} leaves no steps to '
        f'decay over (train.steps={config.train.steps}); pass a smaller '
        f'--config.{section}.warmup_steps (fit_to_run shortens it for you).'
      )


def _warmup_too_long(config: ml_collections.ConfigDict, section: str) -> bool:
  optim = config[section]
  return optim.schedule != 'constant' and optim.warmup_steps >= config.train.steps


def fit_to_run(config: ml_collections.ConfigDict) -> list[str]:
  """Shortens a learning-rate warmup longer than the run to a tenth of the run.

  A quick `--config.train.steps=20` on an experiment with a 500-step warmup is the first
  thing a researcher tries; it should run, and say what it changed. Returns one message
  per change (the loop logs them); the config then records the values that ran.
  """
  changes = []
  for section in ('optim', 'd_optim'):
    if section in config and _warmup_too_long(config, section):
      old, new = config[section].warmup_steps, config.train.steps // 10
      config[section].warmup_steps = new
      changes.append(
        f'config.{section}.warmup_steps={old} is not shorter than '
        f'train.steps={config.train.steps}: warming up over {new} steps (a tenth '
        f'of the run) instead; pass --config.{section}.warmup_steps to choose.'
      )
  return changes


def add_fields(config: ml_collections.ConfigDict, fields: dict[str, Any]) -> None:
  """Adds `{'section.name': default}` fields to `config`, creating sections as needed.

  How datasets and families declare their fields: a field already there keeps its value,
  so a family may refine a section another module opened.
  """
  for dotted, value in fields.items():
    *path, last = dotted.split('.')
    node = config
    for part in path:
      if part not in node:
        node[part] = ml_collections.ConfigDict()
      node = node[part]
    if last not in node:
      node[last] = value
  _declare(flatten(fields))


def get_path(config: ml_collections.ConfigDict, dotted: str) -> Any:
  node = config
  for part in dotted.split('.'):
    node = node[part]
  return node


def set_path(config: ml_collections.ConfigDict, dotted: str, value: Any) -> None:
  *path, last = dotted.split('.')
  node = config
  for part in path:
    node = node[part]
  if isinstance(node[last], tuple) and isinstance(value, list):
    value = tuple(value)  # JSON has no tuples
  node[last] = value


def to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=list)


def flatten(tree: Any, prefix: str = '') -> dict[str, Any]:
  """{'a': {'b': 1}} -> {'a.b': 1}; tuples become lists so JSON round trips compare."""
  if isinstance(tree, ml_collections.ConfigDict):
    tree = tree.to_dict()
  if isinstance(tree, dict):
    out = {}
    for key, value in tree.items():
      out.update(flatten(value, f'{prefix}{key}.'))
    return out
  if isinstance(tree, tuple):
    tree = list(tree)
  return {prefix[:-1]: tree}


def _may_change(field: str) -> bool:
  for pattern in RESUMABLE_CHANGES:
    if pattern.endswith('.*') and field.startswith(pattern[:-1]):
      return True
    if field == pattern:
      return True
  return False


def config_differences(saved: dict, current: ml_collections.ConfigDict) -> list[str]:
  """Fields (dotted) whose values differ and that may not change on resume.

  A field the saved config lacks is no difference when its value now is a declared
  default: the framework added it after the run was written (see _DECLARED).
  """
  old, new = flatten(saved), flatten(current)
  fields = sorted(set(old) | set(new))
  return [
    f'{f}: {old.get(f, "<absent>")!r} -> {new.get(f, "<absent>")!r}'
    for f in fields
    if old.get(f, '<absent>') != new.get(f, '<absent>')
    and not _may_change(f)
    and not (f not in old and f in new and new[f] in _DECLARED.get(f, ()))
  ]
