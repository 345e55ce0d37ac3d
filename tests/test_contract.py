"""The contract every family and every experiment keeps, checked on all of them.

Each file in experiments/ is shrunk to a tiny size (`shrink`, by family) and run through
what a user does: a 4-step run stopped after step 2 -> checkpoint -> genjax.load -> the
family's evaluation on a few examples -> every view, saved -> resumed to step 4. A family
registered in genjax.tasks.FAMILIES without an experiment, or without a shrinker here,
fails, so a new family or experiment is covered the moment it exists.
"""

import importlib
import pathlib

import jax
import pytest

import genjax
from genjax import api, tasks
from genjax.data import datasets
from genjax.run import loop, preemption
from tests.conftest import EXPERIMENTS


def _small_widths(widths):
  return tuple(4 for _ in widths)


def _images(c):
  c.data.num_train = 64
  c.data.num_test = 32
  c.data.num_anomaly = 16
  c.data.batch_size = 16
  c.data.clusters = min(c.data.clusters, 4)
  c.eval.batch_size = 16
  c.eval.num_examples = 32


def _autoencoder(c):
  _images(c)
  c.model.widths = _small_widths(c.model.widths)
  c.model.hidden = (16,)
  c.model.latent_dim = 4


def _vae(c):
  _autoencoder(c)
  c.eval.iwae_samples = 4
  c.eval.iwae_examples = 16
  c.eval.iwae_batch_size = 16
  c.eval.anomaly_samples = 2
  c.eval.num_samples = 32


def _classifier(c):
  _images(c)
  c.model.widths = _small_widths(c.model.widths)
  c.model.hidden = 16


def _vit(c):
  _images(c)
  c.model.width = 8
  c.model.num_layers = 1
  c.model.num_heads = 2


def _gan(c):
  _images(c)
  c.model.generator.latent_dim = 8
  c.model.generator.widths = _small_widths(c.model.generator.widths)
  c.model.discriminator.widths = _small_widths(c.model.discriminator.widths)
  c.eval.num_samples = 32


def _diffusion(c):
  _images(c)
  c.model.channels = 4
  c.model.channel_mults = (1,)
  c.model.patch_size = 2
  c.model.attention_resolutions = ()
  c.model.num_heads = 2
  c.sample.steps = 2
  c.eval.num_samples = 32
  c.eval.timed_samples = 4


def _lm(c):
  c.data.max_train_chars = 20_000
  c.data.max_files = 40 if c.data.name == 'python_stdlib' else 0
  c.data.vocab_size = min(c.data.vocab_size, 512)
  c.data.num_val_windows = 8
  c.data.batch_size = 8
  c.model.block_size = 16
  c.model.num_layers = 1
  c.model.num_heads = 2
  c.model.width = 16
  c.eval.batch_size = 8
  c.eval.parse_samples = min(c.eval.parse_samples, 1)
  c.eval.parse_max_new_tokens = 4
  c.sample.max_new_tokens = 4


def _seq2seq(c):
  c.data.num_train = 200
  c.data.num_test = 8
  c.data.vocab_size = 512
  c.data.max_length = min(c.data.max_length, 96)
  c.data.length_multiple = c.data.max_length  # one batch shape: one compile of each step
  c.data.tokens_per_batch = 768
  c.model.num_encoder_layers = 1
  c.model.num_decoder_layers = 1
  c.model.num_heads = 2
  c.model.width = 16
  c.eval.bleu_examples = 4
  c.eval.batch_size = 8
  c.eval.beam_size = 2
  c.eval.max_length_a = 0.0
  c.eval.max_length_b = 4


def _chat(c):
  c.data.max_conversations = 40
  c.data.vocab_size = min(c.data.vocab_size, 512)
  c.data.num_val_windows = 8
  c.data.batch_size = 8
  c.model.block_size = 16
  c.model.num_layers = 1
  c.model.num_heads = 2
  c.model.width = 16
  c.eval.batch_size = 8
  c.eval.reply_samples = 2
  c.eval.reply_max_new_tokens = 4
  c.sample.max_new_tokens = 4


def _encoder(c):
  c.model.num_layers = 1
  c.model.num_heads = 2
  c.model.width = 16
  c.data.vocab_size = min(c.data.vocab_size, 512)
  c.data.batch_size = 8
  c.eval.batch_size = 8


def _bert(c):
  _encoder(c)
  c.data.max_train_chars = 20_000
  c.data.max_files = 40
  c.data.num_val_windows = 8
  c.data.block_size = 16
  c.eval.num_examples = 8


def _text_classifier(c):
  _encoder(c)
  c.data.num_classes = min(c.data.num_classes, 3)
  c.data.num_train = 64
  c.data.num_test = 16
  c.data.max_length = 32
  c.eval.num_examples = 16


def _piano_roll(c):
  c.data.batch_size = 8
  c.model.num_layers = 1
  c.model.num_heads = 2
  c.model.width = 16
  c.model.nade_hidden = 8
  c.sample.num_pieces = 2
  c.sample.steps = 8
  c.eval.batch_size = 80  # every validation and test chorale in one batch
  c.eval.num_examples = 16


def _voices(c):
  c.data.batch_size = 8
  c.data.block_size = 32  # a multiple of 8 * data.start_every
  c.model.num_layers = 1
  c.model.num_heads = 2
  c.model.width = 16
  c.sample.num_pieces = 2
  c.sample.steps = 8
  c.eval.batch_size = 512  # the validation and test chorales' windows in a few batches
  c.eval.num_examples = 16
  c.eval.sample_pieces = 2
  c.eval.sample_steps = 8


SHRINK = {
  'vae': _vae,
  'autoencoder': _autoencoder,
  'classifier': _classifier,
  'vit': _vit,
  'gan': _gan,
  'diffusion': _diffusion,
  'lm': _lm,
  'seq2seq': _seq2seq,
  'bert': _bert,
  'text_classifier': _text_classifier,
  'chat': _chat,
  'piano_roll': _piano_roll,
  'voices': _voices,
}


def shrink(c, steps: int):
  if c.task not in SHRINK:
    pytest.fail(f'Family {c.task!r} has no shrinker in tests/test_contract.py: add one.')
  SHRINK[c.task](c)
  c.optim.warmup_steps = 0
  c.train.steps = steps
  c.train.steps_per_call = 1
  c.train.log_every = 1
  # The stopped run's own evaluation and samples would repeat what the test does after
  # the stop (the suite's time is short): the resumed run evaluates and samples at 4.
  c.train.eval_every = 4
  c.train.checkpoint_every = 2
  c.train.sample_every = 4
  return c


def experiment_config(name: str, steps: int):
  return shrink(importlib.import_module(f'experiments.{name}').get_config(), steps)


def test_every_family_has_an_experiment():
  families = {experiment_config(name, 2).task for name in EXPERIMENTS}
  assert set(tasks.FAMILIES) <= families, set(tasks.FAMILIES) - families


@pytest.fixture(scope='module')
def classifiers(tmp_path_factory):
  """A tiny trained classifier per image dataset, for the GAN family's metrics."""
  made = {}

  def get(dataset: str) -> str:
    if dataset not in made:
      c = experiment_config('mnist_classifier', 2)
      c.data.name = dataset
      c.model.num_classes = 5 if dataset == 'fruits' else 10
      made[dataset] = str(tmp_path_factory.mktemp(f'classifier_{dataset}'))
      loop.train_and_evaluate(c, made[dataset])
    return made[dataset]

  return get


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_experiment_trains_loads_evaluates_draws_and_resumes(
  name, tmp_path, classifiers, monkeypatch
):

  config = experiment_config(name, 4)
  if 'classifier_workdir' in config.eval:
    config.eval.classifier_workdir = classifiers(config.data.name)

  workdir = str(tmp_path / name)
  # Stopped after step 2 as by SIGTERM, then resumed by the same command: the resumed
  # run compiles nothing the first did not (a changed step count would change the
  # learning-rate schedule, and so the step).
  with monkeypatch.context() as patch:
    patch.setattr(preemption.Flag, 'should_stop', lambda self, step: step >= 2)
    stopped = loop.train_and_evaluate(config, workdir)
  assert int(stopped.step) == 2

  saved, model, variables = genjax.load(workdir)
  assert saved.task == config.task and model is not None and jax.tree.leaves(variables)
  saved, task, state = api.load_state(workdir)
  data = datasets.load(saved.data, workdir=workdir)
  rng = jax.random.PRNGKey(0)
  report = task.evaluate(task.inference_variables(state), data, rng, eval_config=saved.eval)
  assert report and all(v == v for v in report.values() if isinstance(v, float))  # no NaN

  for mode, view in task.views.items():
    options = {'max_new_tokens': 4} if 'max_new_tokens' in view.options else {}
    drawn = view(task.inference_variables(state), data.test, rng, 4, **options)
    assert pathlib.Path(drawn.save(tmp_path / 'views' / mode)).stat().st_size > 0

  resumed = loop.train_and_evaluate(config, workdir)
  assert int(resumed.step) == 4
