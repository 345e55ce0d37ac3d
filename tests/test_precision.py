"""The Transformer families in bfloat16 (float32 master weights, optimizer state and loss)
and under each activation-checkpointing policy."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genjax import tasks
from genjax.config import ConfigError
from genjax.data import datasets
from genjax.models.transformer import REMAT_POLICIES
from genjax.run import restore
from tests import tiny
from tests.test_parallel import step_metrics, train_steps

# Precision and remat do not depend on the batch shape: seq2seq's token budget gives one.
SEQ2SEQ = functools.partial(tiny.seq2seq, one_shape=True)
FAMILIES = [tiny.lm, SEQ2SEQ, tiny.bert, tiny.vit]
IDS = ['lm', 'seq2seq', 'bert', 'vit']


def _with(config, **model):
  config = config.copy_and_resolve_references()
  for field, value in model.items():
    config.model[field] = value
  return config


@pytest.mark.parametrize('make_config', FAMILIES, ids=IDS)
def test_bfloat16_keeps_float32_weights_and_trains_to_the_float32_loss(make_config):
  config = make_config(steps=20)
  data = datasets.load(config.data)
  full = step_metrics(config, 'jit', jax.devices()[:1], 20, data=data)[:, 0]
  half_config = _with(config, dtype='bfloat16')
  state, half = train_steps(half_config, 'jit', jax.devices()[:1], 20, data=data)
  half = half[:, 0]
  assert half[-1] < half[0]
  # bfloat16 keeps 8 bits of mantissa: the same descent, to within 2% of the loss.
  np.testing.assert_allclose(half[-1], full[-1], rtol=0.02)
  for tree in (state.params, state.opt_state):
    floats = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert floats and all(x.dtype == jnp.float32 for x in floats)


@pytest.mark.parametrize(
  'make_config, policies',
  [(tiny.lm, REMAT_POLICIES), (SEQ2SEQ, ('none', 'full')), (tiny.vit, ('none', 'full'))],
  ids=IDS[:2] + IDS[3:],
)
def test_every_remat_policy_computes_the_same_step(make_config, policies):
  """Every policy on the LM; the other models wrap their blocks with the same
  `transformer.rematted`, so 'full' against 'none' checks how each passes ``train``."""
  config = make_config(steps=5)
  data = datasets.load(config.data)
  runs = {
    policy: step_metrics(
      _with(config, remat=policy), 'jit', jax.devices()[:1], 5, ('loss', 'grad_norm'), data
    )
    for policy in policies
  }
  for policy, metrics in runs.items():
    np.testing.assert_allclose(metrics, runs['none'], rtol=1e-5, err_msg=policy)


def test_an_unknown_remat_policy_is_a_config_error():
  config = _with(tiny.lm(steps=1), remat='some')
  with pytest.raises(ConfigError, match="config.model: remat must be one of .*'dots'"):
    tasks.build(config, datasets.load(config.data).spec, restore.RUNS)


def test_a_run_written_with_remat_as_a_bool_loads_with_its_policy():
  fields = tiny.lm(steps=1).to_dict()
  fields['model']['remat'] = True  # as config.json held it before the policies
  assert tasks.complete(ml_collections.ConfigDict(fields)).model.remat == 'full'
