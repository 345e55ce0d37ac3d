"""Test setup: CPU only, 4 fake devices; datasets where the library looks for them.

Datasets come from $GENJAX_DATA_DIR, else ~/.cache/genjax, downloaded when missing and
online (`.ci/run` sets GENJAX_DATA_DIR=../shared/data). Offline with a dataset missing,
a test that needs it is skipped with one line naming the dataset and where its files go;
under CI=true or with --require-data it fails instead, so CI cannot pass by skipping.
"""

import os
import urllib.error
import urllib.request
import pathlib

import pytest

# Before JAX is imported anywhere: multi-device code runs on 4 fake CPU devices. The
# tests' tiny steps spend far longer compiling than running, so LLVM's optimizations and
# XLA:CPU's newer fusion emitters are off for them (both cut compile time; the stop-29
# note has the A/B of the emitters); benchmarks and records compile as users do.
os.environ['JAX_PLATFORMS'] = 'cpu'
os.environ.setdefault(
  'XLA_FLAGS',
  '--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0'
  ' --xla_cpu_use_fusion_emitters=false',
)

REPO = pathlib.Path(__file__).resolve().parents[1]
# Every experiment file, by module name: the tests that cover all of them list the folder.
EXPERIMENTS = sorted(p.stem for p in (REPO / 'experiments').glob('*.py') if p.stem != '__init__')

# Tests compile the same small steps again and again; a persistent cache shared by the
# test processes (and the entry points they start) turns most compiles into cache reads.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', str(REPO / '.pytest_cache' / 'jax'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

# The first line of genjax.data.files' message for a dataset it could neither find nor
# download; in a test's error (raised in process, or printed by an entry point it ran).
_MISSING = 'file(s) missing under'


def pytest_addoption(parser):
  parser.addoption(
    '--require-data',
    action='store_true',
    help='Fail, not skip, the tests whose datasets are missing (CI=true too).',
  )


def _requires_data(config) -> bool:
  return config.getoption('--require-data') or os.environ.get('CI', '').lower() == 'true'


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
  outcome = yield
  report = outcome.get_result()
  if not report.failed or call.excinfo is None or _requires_data(item.config):
    return
  text = str(call.excinfo.value)
  if _MISSING not in text:
    return
  line = next(line for line in text.splitlines() if _MISSING in line)
  line = line[line.index('Dataset ') :] if 'Dataset ' in line else line
  report.outcome = 'skipped'
  report.longrepr = (str(item.path), item.location[1] or 0, f'missing data: {line.strip()}')


def batches_of_two_processes(source, step: int, monkeypatch) -> list[dict]:
  """Batch `step` of a batch source as each of two processes would take its half."""
  import jax  # pylint: disable=import-outside-toplevel (after the environment above)

  monkeypatch.setattr(jax, 'process_count', lambda: 2)
  halves = []
  for rank in (0, 1):
    monkeypatch.setattr(jax, 'process_index', lambda rank=rank: rank)
    halves.append(source.batch(step))
  return halves


@pytest.fixture
def mnist_data():
  """MNIST present (downloaded when online), for tests that meet it only in a
  subprocess, where a missing dataset would not show as the error above."""
  from genjax.data import files, mnist  # pylint: disable=import-outside-toplevel

  files.fetch_all(files.resolve_data_dir(None), 'mnist', mnist.dataset_files('mnist'))


@pytest.fixture
def offline(monkeypatch):
  """Every download fails, as on a machine without network; records the URLs tried."""
  tried = []

  def fail(url, *args, **kwargs):
    tried.append(url)
    raise urllib.error.URLError('network is unreachable (test)')

  monkeypatch.setattr(urllib.request, 'urlopen', fail)
  return tried
