"""bench.diffusion_steps: FID against sampler steps from a trained run, and its plot."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from genjax.run import loop
from tests import tiny
from tests.conftest import REPO


def bench(*flags):
  """bench.diffusion_steps in its own process: its absl flags are its own."""
  return subprocess.run(
    [sys.executable, '-m', 'bench.diffusion_steps', *flags],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
  )


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """A tiny classifier and a tiny class-conditional diffusion run scored by it."""
  classifier = str(tmp_path_factory.mktemp('classifier'))
  loop.train_and_evaluate(tiny.classifier(), classifier)
  diffusion = str(tmp_path_factory.mktemp('diffusion'))
  c = tiny.diffusion(steps=8, dropout=0.0)
  c.eval.classifier_workdir = classifier
  loop.train_and_evaluate(c, diffusion)
  return classifier, diffusion


def test_scores_every_sampler_and_step_count_and_plots_them(runs, tmp_path):
  _, workdir = runs
  flags = ('--samplers=ddim,heun', '--steps=2,3', '--num_samples=64', f'--out={tmp_path}')
  proc = bench(f'--workdir={workdir}', *flags)
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / 'diffusion_steps.json').read_text())
  rows = results['results']
  assert [(r['sampler'], r['steps']) for r in rows] == [
    ('ddim', 2),
    ('ddim', 3),
    ('heun', 2),
    ('heun', 3),
  ]
  # Heun's last step is Euler's: 2 s - 1 calls; DDIM's one a step.
  assert [r['nfe'] for r in rows] == [2, 3, 3, 5]
  assert all(np.isfinite(r['fid']) and 0 <= r['label_accuracy'] <= 1 for r in rows)
  assert results['fid_by_steps']['heun']['3'] == rows[3]['fid']
  assert results['num_samples'] == 64 and results['guidance'] == 1.5
  image = np.asarray(Image.open(tmp_path / 'diffusion_steps.png').convert('RGB'))
  assert image.shape == (420, 640, 3)
  # Both samplers' colours are drawn.
  for colour in ((0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28)):
    assert np.any(np.all(image == colour, axis=-1)), colour


def test_a_run_of_another_family_is_refused(runs):
  classifier, _ = runs
  proc = bench(f'--workdir={classifier}', '--steps=2')
  assert proc.returncode == 2 and 'needs a diffusion run' in proc.stderr, proc.stderr[-3000:]
