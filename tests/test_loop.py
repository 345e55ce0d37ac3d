"""The training loop's promises: workdir layout, exact resume, refusals, fallbacks, NaN."""

import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from genjax import tasks
from genjax.run import checkpoints, loop, workdir as workdir_lib
from genjax.writers.metrics import read_metrics
from tests import tiny
from tests.trees import assert_trees_equal


def _params(state):
  return jax.tree.leaves(jax.device_get(state.params))


def test_workdir_layout(tmp_path):
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(tiny.vae(steps=8), workdir)
  names = set(os.listdir(workdir))
  assert {'config.json', 'metrics.jsonl', 'checkpoints', 'tensorboard', 'samples'} <= names
  rows = read_metrics(workdir)
  train = [r for r in rows if r['split'] == 'train']
  test = [r for r in rows if r['split'] == 'test']
  assert [r['step'] for r in train] == [4, 8] and [r['step'] for r in test] == [4, 8]
  assert {'loss', 'elbo', 'kl', 'grad_norm', 'steps_per_s'} <= set(train[0])
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['4', '8']
  assert os.listdir(os.path.join(workdir, 'samples')) == ['step_00000008.png']
  assert any(
    f.startswith('events.out.tfevents') for f in os.listdir(os.path.join(workdir, 'tensorboard'))
  )


def _sigterm_at(stop_step):
  def hook(step, state):
    if step == stop_step:
      os.kill(os.getpid(), signal.SIGTERM)

  return hook


@pytest.mark.parametrize('make_config', [tiny.vae, tiny.lm], ids=['vae', 'lm_with_dropout'])
def test_preempted_and_resumed_equals_uninterrupted(tmp_path, make_config):
  # The LM replays its random text windows (from seed and step) and dropout keys.
  config = make_config(steps=12)
  config.train.checkpoint_every = 100  # only the preemption and the end save
  config.train.steps_per_call = 1  # hooks after every step (several per call: below)
  straight = loop.train_and_evaluate(config, str(tmp_path / 'straight'))

  workdir = str(tmp_path / 'preempted')
  stopped = loop.train_and_evaluate(config, workdir, hooks=[_sigterm_at(5)])
  assert int(stopped.step) == 5
  assert os.listdir(os.path.join(workdir, 'checkpoints')) == ['5']
  resumed = loop.train_and_evaluate(config, workdir)
  assert int(resumed.step) == 12
  for a, b in zip(_params(straight), _params(resumed)):
    np.testing.assert_array_equal(a, b)  # bitwise: same data order, same PRNG keys


def test_changed_config_refuses_before_writing(tmp_path):
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(tiny.vae(steps=4), workdir)
  before = open(os.path.join(workdir, 'metrics.jsonl')).read()
  changed = tiny.vae(steps=8)
  changed.optim.learning_rate = 0.1234
  with pytest.raises(workdir_lib.ConfigChangedError, match='optim.learning_rate'):
    loop.train_and_evaluate(changed, workdir)
  assert open(os.path.join(workdir, 'metrics.jsonl')).read() == before
  # A longer run of the same experiment is a resume, not a change.
  state = loop.train_and_evaluate(tiny.vae(steps=8), workdir)
  assert int(state.step) == 8


def test_damaged_latest_checkpoint_falls_back(tmp_path, caplog):
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(tiny.vae(steps=8), workdir)
  state_dir = os.path.join(workdir, 'checkpoints', '8', 'state')
  for root, _, files in os.walk(state_dir):
    for name in files:
      with open(os.path.join(root, name), 'wb') as f:
        f.write(b'damaged')
  config = tiny.vae(steps=8)
  with caplog.at_level('WARNING'):
    state = loop.train_and_evaluate(config, workdir)
  assert 'falling back' in caplog.text
  assert int(state.step) == 8  # resumed at 4, retrained 4..8


def _poison_losses(monkeypatch):
  """From now on, tasks.build gives tasks whose training loss is NaN."""
  real_build = tasks.build

  def poisoned_build(config, data_spec, runs=None):
    task = real_build(config, data_spec, runs)

    def loss(params, batch, rng):
      value, metrics = task.loss(params, batch, rng)
      return value * jnp.nan, metrics

    return task.__class__(**{**task.__dict__, 'loss': loss})

  monkeypatch.setattr(tasks, 'build', poisoned_build)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(tiny.vae(steps=4), workdir)

  _poison_losses(monkeypatch)
  with pytest.raises(loop.NonFiniteLossError, match='step 5') as e:
    loop.train_and_evaluate(tiny.vae(steps=8), workdir)
  assert 'step 4' in str(e.value)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['4']


def test_nan_before_any_checkpoint_says_so(tmp_path, monkeypatch):
  _poison_losses(monkeypatch)
  with pytest.raises(loop.NonFiniteLossError, match='step 1;') as e:
    loop.train_and_evaluate(tiny.vae(steps=8), str(tmp_path / 'run'))
  assert 'No checkpoint had been written yet' in str(e.value)


def test_call_sizes_end_where_the_loop_acts():
  config = tiny.vae(steps=14)
  config.train.steps_per_call = 5
  config.train.log_every, config.train.eval_every = 4, 6
  config.train.sample_every, config.train.checkpoint_every = 0, 100
  # Boundaries at 4, 6, 8, 12 and the last step, 14.
  assert loop.call_sizes(0, config.train) == [4, 2, 2, 4, 2]
  assert loop.call_sizes(5, config.train) == [1, 2, 4, 2]  # a resume between boundaries
  config.train.steps_per_call = 1
  assert loop.call_sizes(0, config.train) == [1] * 14


@pytest.mark.parametrize('make_config', [tiny.vae, tiny.lm], ids=['vae', 'lm_with_dropout'])
def test_steps_per_call_trains_as_one_step_per_call(tmp_path, make_config):
  config = make_config(steps=12)
  config.train.log_every = 3
  config.train.steps_per_call = 1  # shakespeare_char:cpu, which tiny.lm shrinks, has 50
  straight = loop.train_and_evaluate(config, str(tmp_path / 'one'))
  config.train.steps_per_call = 5  # calls of 3 steps: logging every 3 ends each
  scanned = loop.train_and_evaluate(config, str(tmp_path / 'scan'))
  assert int(scanned.step) == 12
  for a, b in zip(_params(straight), _params(scanned)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  rows = {
    run: [r for r in read_metrics(str(tmp_path / run)) if r['split'] == 'train']
    for run in ('one', 'scan')
  }
  assert [r['step'] for r in rows['scan']] == [r['step'] for r in rows['one']] == [3, 6, 9, 12]
  for one, scan in zip(rows['one'], rows['scan']):
    np.testing.assert_allclose(scan['loss'], one['loss'], rtol=1e-5)
  assert sorted(os.listdir(str(tmp_path / 'scan' / 'checkpoints'))) == ['12', '4', '8']


def test_steps_per_call_preempted_and_resumed(tmp_path):
  config = tiny.lm(steps=12)
  config.train.checkpoint_every = 100
  config.train.steps_per_call = 1
  straight = loop.train_and_evaluate(config, str(tmp_path / 'straight'))
  config.train.steps_per_call = 4
  workdir = str(tmp_path / 'preempted')
  stopped = loop.train_and_evaluate(config, workdir, hooks=[_sigterm_at(4)])
  assert int(stopped.step) == 4  # the call that saw the signal ran to its end
  assert os.listdir(os.path.join(workdir, 'checkpoints')) == ['4']
  resumed = loop.train_and_evaluate(config, workdir)
  assert int(resumed.step) == 12
  for a, b in zip(_params(straight), _params(resumed)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # Against an uninterrupted run of the same calls: bitwise (same data, keys and programs).
  straight_calls = loop.train_and_evaluate(config, str(tmp_path / 'straight_calls'))
  assert_trees_equal(straight_calls.params, resumed.params)


def test_steps_per_call_names_the_first_non_finite_step(tmp_path, monkeypatch):
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(tiny.vae(steps=4), workdir)
  _poison_losses(monkeypatch)
  config = tiny.vae(steps=8)
  config.train.steps_per_call = 4
  # One call runs steps 5..8, all NaN: the first of them is named, not the call's last.
  with pytest.raises(loop.NonFiniteLossError, match='step 5;') as e:
    loop.train_and_evaluate(config, workdir)
  assert 'step 4' in str(e.value)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['4']


@pytest.mark.parametrize('failing', [2, 4], ids=['a_middle_save', 'the_final_save'])
def test_error_in_an_asynchronous_checkpoint_save_ends_the_run(tmp_path, monkeypatch, failing):
  """A save that fails in Orbax's background thread (disk full, a lost mount) stops the run
  with that error, at the next save or when the run closes its checkpoints, rather than
  hanging or passing silently. 16 steps save at 4, 8, 12 and 16."""
  calls = []
  original = ocp.JsonCheckpointHandler._save_fn

  async def failing_save(self, item, directory):
    calls.append(item['step'])
    if len(calls) == failing:
      raise OSError(28, 'No space left on device (injected)')
    return await original(self, item, directory)

  monkeypatch.setattr(ocp.JsonCheckpointHandler, '_save_fn', failing_save)
  workdir = str(tmp_path / 'run')
  start = time.monotonic()
  with pytest.raises(OSError, match='No space left on device'):
    loop.train_and_evaluate(tiny.vae(steps=16), workdir)
  assert time.monotonic() - start < 120
  assert calls[-1] == 4 * failing  # no save after the failed one
  # What was saved before the failure is still there and restorable.
  assert checkpoints.Checkpointer(os.path.join(workdir, 'checkpoints')).steps()[0] == 4
