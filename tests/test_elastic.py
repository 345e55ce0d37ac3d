"""A run's layout on the devices is not part of the experiment: a checkpoint written on
4 devices resumes on 2 (or under 'fsdp'), Orbax restoring each array onto the new
shardings, and the run ends where the uninterrupted one does; genjax.load and
launch.evaluate read it on one device."""

import jax
import numpy as np
import pytest

import genjax
from genjax.config import ConfigError
from genjax.run import loop
from genjax.step import parallel
from tests import tiny
from tests.test_loop import _sigterm_at


def _laid_out(config, mesh='', strategy='jit'):
  config = config.copy_and_resolve_references()
  config.parallel.mesh, config.parallel.strategy = mesh, strategy
  config.parallel.fsdp_min_size = 0  # a tiny model: split every array that divides
  return config


@pytest.mark.parametrize(
  'mesh, strategy', [('data:2', 'jit'), ('data:2', 'fsdp'), ('', 'fsdp')], ids=str
)
def test_resumed_on_other_devices_ends_where_the_uninterrupted_run_ends(tmp_path, mesh, strategy):
  config = tiny.lm(steps=8)
  config.train.checkpoint_every = 100  # only the preemption and the end save
  config.train.steps_per_call = 1
  straight = loop.train_and_evaluate(_laid_out(config), str(tmp_path / 'straight'))

  workdir = str(tmp_path / 'moved')
  stopped = loop.train_and_evaluate(_laid_out(config), workdir, hooks=[_sigterm_at(4)])
  assert int(stopped.step) == 4
  resumed = loop.train_and_evaluate(_laid_out(config, mesh, strategy), workdir)
  assert int(resumed.step) == 8
  devices = 2 if mesh else 4
  for leaf in jax.tree.leaves(resumed.params):
    assert len(leaf.sharding.device_set) == devices
  if strategy == 'fsdp':  # split, not copied: some array has a shard smaller than itself
    assert any(
      leaf.sharding.shard_shape(leaf.shape) != leaf.shape
      for leaf in jax.tree.leaves(resumed.params)
    )
  for a, b in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)

  _, _, params = genjax.load(workdir)  # on one device, whatever the run's layout
  for leaf in jax.tree.leaves(params):
    assert len(leaf.sharding.device_set) == 1


def test_mesh_names_its_axes_and_refuses_what_cannot_be_built():
  assert parallel.mesh_of('').shape == {'data': 4}
  assert parallel.mesh_of('data:2').shape == {'data': 2}
  assert dict(parallel.mesh_of('data:2,model:2').shape) == {'data': 2, 'model': 2}
  assert dict(parallel.mesh_of('model:2').shape) == {'data': 2, 'model': 2}
  with pytest.raises(ConfigError, match='asks for 8 devices; this run has 4'):
    parallel.mesh_of('data:4,model:2')
  with pytest.raises(ConfigError, match="AXIS:SIZE pairs.*'data:2,model:2'"):
    parallel.mesh_of('batch:4')
  with pytest.raises(ConfigError, match='AXIS:SIZE'):
    parallel.mesh_of('data:0')
  with pytest.raises(ConfigError, match="strategy=jit"):
    parallel.compile_step(lambda s, b, axis_name: (s, {}), parallel.mesh_of('model:2'), 'pmap')
