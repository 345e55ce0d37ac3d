"""`config.init_from`: a new run's parameters start from another run's (pretraining ->
fine-tuning), for any family whose parameter names match.

Before the data loads (`prepare`), the source workdir is checked (a trained run) and the
tokenizers its DataSpec names are copied into the new workdir, where datasets look for
theirs: token ids then mean what the pretrained model learned them as. Before anything
else is written (`check_fits`), the shapes of both runs' parameters are compared. After
the new run's initial state is made, and only when it does not resume from a checkpoint
of its own (`initialize`), every parameter whose path and shape are the same in both runs is
copied from the source's latest checkpoint (its EMA weights when it kept them): the
parameters only, never its optimizer state, step or PRNG key. The new run's own head
(`Task.head`: a classifier's, say) keeps its initialisation unless the source has it
with the same shapes; the source's parameters that the new model lacks (a pretraining
head) are not used. Anything else is an error
that lists every parameter that does not fit: a path of the new model that the source
lacks, or one it holds with another shape (another family, another size).

Nothing here knows a family: paths, shapes and `Task.head` are all it reads.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

import flax.linen as nn
import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from flax import traverse_util

from genjax.config import ConfigError
from genjax.data import tokenizers as tokenizers_lib
from genjax.data.spec import SPEC_FILE, example_batch
from genjax.run import workdir as workdir_lib

CHECKPOINTS = 'checkpoints'
_SHOWN = 40  # lines of a mismatch list before "and N more"


def _steps(source: str) -> list[int]:
  directory = os.path.join(source, CHECKPOINTS)
  if not os.path.isdir(directory):
    return []
  return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def has_checkpoint(workdir: str) -> bool:
  return bool(_steps(workdir))


def check_source(source: str, workdir: str) -> None:
  """A trained run to start from, or a message saying what to do."""
  if os.path.abspath(source) == os.path.abspath(workdir):
    raise ConfigError(
      f'config.init_from={source!r} is this run\'s own workdir; a run resumes from its own '
      'checkpoints without it. Point init_from at another (pretrained) run.'
    )
  if not os.path.exists(os.path.join(source, workdir_lib.CONFIG_FILE)):
    raise FileNotFoundError(
      f'config.init_from={source!r} is not a genjax workdir (no {workdir_lib.CONFIG_FILE}): '
      'train the run to start from first, e.g. python -m launch.main '
      f'--config=experiments/stdlib_bert.py --workdir={source}'
    )
  if not _steps(source):
    raise FileNotFoundError(
      f'config.init_from={source!r} has no checkpoint yet: let its training write one '
      '(train.checkpoint_every) or finish, then start this run.'
    )


def _same(a, b) -> bool:
  return (
    a.kind == b.kind
    and getattr(a, 'model_proto', None) == getattr(b, 'model_proto', None)
    and getattr(a, 'chars', None) == getattr(b, 'chars', None)
  )


def copy_tokenizers(source: str, workdir: str) -> list[str]:
  """Copies the tokenizers the source's DataSpec names into `workdir`; the names copied.

  A tokenizer already there must be the same one (a resumed run); written atomically, so
  processes that copy at once leave one whole copy.
  """
  spec_path = pathlib.Path(source) / SPEC_FILE
  if not spec_path.exists():
    return []
  names = sorted({f['tokenizer'] for f in json.loads(spec_path.read_text()).values()} - {''})
  copied = []
  for name in names:
    tokenizer = tokenizers_lib.load_tokenizer(pathlib.Path(source) / name)
    target = pathlib.Path(workdir) / name
    try:
      there = tokenizers_lib.load_tokenizer(target)
    except FileNotFoundError:
      there = None
    if there is not None:
      if not _same(there, tokenizer):
        raise ConfigError(
          f'{target} holds another tokenizer than {pathlib.Path(source) / name}, so token ids '
          f'would not mean what config.init_from={source!r} learned them as. Use a new '
          '--workdir.'
        )
      continue
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'.{name}.', dir=target.parent))
    try:
      tokenizer.save(tmp)
      os.rename(tmp, target)
      copied.append(name)
    except OSError:
      if not target.exists():
        raise
    finally:
      shutil.rmtree(tmp, ignore_errors=True)
  return copied


def prepare(source: str, workdir: str) -> None:
  """Before the data loads: the source checked, its tokenizers in `workdir`. A run that
  resumes from its own checkpoints needs neither (the source may be gone by then)."""
  if has_checkpoint(workdir):
    return
  check_source(source, workdir)
  for name in copy_tokenizers(source, workdir):
    logging.info('init_from: copied %s/ from %s.', name, source)


def _read(source: str, values: bool) -> tuple[dict, int, str]:
  """(flat {path: host array, or its metadata when not `values`}, step, 'ema' or 'params')
  of the source's latest checkpoint: its EMA weights when it kept them, else its
  parameters; nothing else is read."""
  step = _steps(source)[-1]
  path = pathlib.Path(source, CHECKPOINTS, str(step), 'state').absolute()
  handler = ocp.PyTreeCheckpointHandler()
  with ocp.Checkpointer(handler) as checkpointer:
    # The handler's own metadata: the tree (the checkpointer's is a whole step's).
    metadata = handler.metadata(path)
    tree = getattr(metadata, 'tree', metadata)
    what = 'ema' if isinstance(tree.get('extra'), dict) and 'ema' in tree['extra'] else 'params'
    item = {'extra': {'ema': tree['extra']['ema']}} if what == 'ema' else {'params': tree['params']}
    if values:
      item = checkpointer.restore(
        path,
        args=ocp.args.PyTreeRestore(
          item=item,
          restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item),
          partial_restore=True,
        ),
      )
  params = item['extra']['ema'] if what == 'ema' else item['params']
  return traverse_util.flatten_dict(params, sep='/'), step, what


def read_params(source: str) -> tuple[dict, int, str]:
  """(flat {path: host array}, step, 'ema' or 'params'): the values `initialize` copies."""
  return _read(source, values=True)


def _is_head(path: str, head: tuple[str, ...]) -> bool:
  return any(part in head for part in path.split('/'))


def _groups(paths) -> str:
  """Paths summarised by their first module under the collection: 'h_0, ln_f (12 arrays)'."""
  paths = list(paths)
  names = []
  for p in paths:
    parts = p.split('/')
    name = parts[1] if parts[0] == 'params' and len(parts) > 2 else parts[0]
    if name not in names:
      names.append(name)
  return f'{", ".join(names)} ({len(paths)} arrays)' if paths else 'none'


def match(
  target: dict, source: dict, head: tuple[str, ...], where: str, families: str = ''
) -> tuple[list[str], list[str], list[str]]:
  """(copied, kept at init, not used) paths of flat `target` and `source`; raises
  ConfigError listing every parameter that does not fit (see the module doc)."""
  problems, copied, kept = [], [], []
  for path, value in target.items():
    shape = tuple(value.shape)
    theirs = tuple(source[path].shape) if path in source else None
    if theirs == shape:
      copied.append(path)
    elif _is_head(path, head):  # absent there, or for other classes: starts afresh
      kept.append(path)
    elif theirs is None:
      problems.append(f'{path}: {shape} in this model, not in {where}')
    else:
      problems.append(f'{path}: {theirs} in {where}, {shape} in this model')
  if problems or not copied:
    shown = problems[:_SHOWN] + (
      [f'... and {len(problems) - _SHOWN} more'] if len(problems) > _SHOWN else []
    )
    raise ConfigError(
      f'config.init_from={where!r}: its parameters do not fit this model{families}; '
      f'{len(problems)} of this model\'s {len(target)} parameters do not match:\n  '
      + '\n  '.join(shown)
      + f'\n{where} holds: {_groups(source)}.\nStart from a run of the same family and '
      'model sizes (its config.json, model.*), or leave config.init_from empty to train '
      'from scratch.'
    )
  unused = [p for p in source if p not in copied]
  return copied, kept, unused


def _families(config) -> str:
  return f' (a {workdir_lib.read_config(config.init_from).task!r} run; this is {config.task!r})'


def check_fits(config, task, spec, workdir: str) -> None:
  """Before anything is written: the source's parameters fit this model (their shapes,
  read from its checkpoint's metadata, against this model's, traced without FLOPs)."""
  if has_checkpoint(workdir):
    return
  example = example_batch(spec)
  target = jax.eval_shape(
    lambda rng: nn.unbox(task.init(rng, example)[0]), jax.random.PRNGKey(0)
  )  # the weights out of their logical-axis boxes, as the state holds them
  source, _, _ = _read(config.init_from, values=False)
  flat = traverse_util.flatten_dict(target, sep='/')
  match(flat, source, tuple(task.head), config.init_from, _families(config))


def _place(value: np.ndarray, like: jax.Array) -> jax.Array:
  # Every process holds the whole value: the same on every host, any sharding.
  value = np.asarray(value, like.dtype)
  return jax.make_array_from_callback(value.shape, like.sharding, lambda index: value[index])


def initialize(state, config, task):
  """`state` with its parameters (and EMA, when the run keeps one) copied from
  `config.init_from` where they match; logs what was copied, kept and left unused."""
  source = config.init_from
  flat_source, step, what = read_params(source)
  flat_target = traverse_util.flatten_dict(state.params, sep='/')
  copied, kept, unused = match(
    flat_target, flat_source, tuple(task.head), source, _families(config)
  )
  merged = {
    path: _place(flat_source[path], value) if path in copied else value
    for path, value in flat_target.items()
  }
  params = traverse_util.unflatten_dict(merged, sep='/')
  extra = dict(state.extra, ema=params) if 'ema' in state.extra else state.extra
  values = sum(int(np.prod(flat_target[p].shape)) for p in copied)
  logging.info(
    'init_from: %s of step %d of %s copied: %s, %d values; kept at their initialisation: '
    '%s; not used: %s. The optimizer starts afresh.',
    'the EMA parameters' if what == 'ema' else 'the parameters',
    step,
    source,
    _groups(copied),
    values,
    _groups(kept),
    _groups(unused),
  )
  return state.replace(params=params, extra=extra)
