"""Config schema: validation, and the resume check's notion of a changed experiment."""

import importlib
import json

import pytest

from genjax import config as config_lib, tasks
from genjax.run import workdir as workdir_lib
from tests import tiny
from tests.conftest import EXPERIMENTS


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_every_experiment_validates_and_runs_short(name):
  """Every experiment's config is valid, declares only its family's fields, and a quick
  `--config.train.steps=20` fits its warmup into the run instead of refusing."""
  c = importlib.import_module(f'experiments.{name}').get_config()
  config_lib.validate(c)
  tasks.check_fields(c)
  assert c.train.steps > 20
  c.train.steps = 20
  config_lib.fit_to_run(c)
  config_lib.validate(c)
  assert c.optim.warmup_steps < 20


def test_a_warmup_longer_than_the_run_is_shortened_and_said():
  c = tiny.vae(steps=20)
  c.optim.warmup_steps = 500
  with pytest.raises(config_lib.ConfigError, match='--config.optim.warmup_steps'):
    config_lib.validate(c)
  (change,) = config_lib.fit_to_run(c)
  assert c.optim.warmup_steps == 2 and 'warming up over 2 steps' in change
  assert config_lib.fit_to_run(c) == []  # nothing left to change


@pytest.mark.parametrize(
  'field,value,message',
  [
    ('parallel.strategy', 'pmapp', 'parallel.strategy'),
    ('optim.name', 'adagradd', 'optim.name'),
    ('data.batch_size', 0, 'data.batch_size'),
    ('train.eval_every', -1, 'train.eval_every'),
  ],
)
def test_bad_values_name_the_field(field, value, message):
  c = tiny.vae()
  section, name = field.split('.')
  c[section][name] = value
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.validate(c)


def test_resume_allows_run_length_and_logging_changes_only(tmp_path):
  c = tiny.vae()
  workdir_lib.check_or_write_config(c, str(tmp_path))
  c.train.steps = 1000
  c.train.log_every = 7
  c.eval.num_examples = 5
  workdir_lib.check_or_write_config(c, str(tmp_path))  # fine
  c.optim.learning_rate = 0.5
  c.model.latent_dim = 3
  with pytest.raises(workdir_lib.ConfigChangedError) as e:
    workdir_lib.check_or_write_config(c, str(tmp_path))
  assert 'optim.learning_rate' in str(e.value) and 'model.latent_dim' in str(e.value)
  assert 'train.steps' not in str(e.value)
  # Allowed explicitly: the new config is written and the old one kept.
  workdir_lib.check_or_write_config(c, str(tmp_path), allow_change=True)
  assert json.loads((tmp_path / 'config.json').read_text())['optim']['learning_rate'] == 0.5
  assert (tmp_path / 'config.json.1').exists()


def test_saved_config_reads_back_equal(tmp_path):
  c = tiny.vae()
  workdir_lib.check_or_write_config(c, str(tmp_path))
  back = workdir_lib.read_config(str(tmp_path))
  assert config_lib.config_differences(json.loads(config_lib.to_json(back)), c) == []
  assert back.model.widths == tuple(c.model.widths)


def test_a_field_added_since_the_run_was_written_resumes_at_its_default():
  """A workdir written before the framework grew a field (config.init_from,
  data.pad_target_to_longest) resumes: absent there and at its declared default here is no
  change. Set to anything else, it is one."""
  c = tiny.vae()
  old = json.loads(config_lib.to_json(c))
  del old['init_from'], old['seed']
  assert config_lib.config_differences(old, c) == []
  c.init_from, c.seed = '/some/pretrained/run', 7
  assert config_lib.config_differences(old, c) == [
    "init_from: '<absent>' -> '/some/pretrained/run'",
    "seed: '<absent>' -> 7",
  ]
