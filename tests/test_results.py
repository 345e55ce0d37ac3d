"""Result records: which files a measurement ran, when a record goes stale, the tables."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from bench import family_tables, records, results


def test_code_closure_follows_imports_and_only_the_named_family():
  entry = results.ENTRIES['mnist_vae']
  code = results._code(entry)
  for path in (
    'experiments/mnist_vae.py',
    'launch/main.py',
    'launch/evaluate.py',
    'genjax/tasks/vae.py',  # named through the FAMILIES registry, not imported statically
    'genjax/data/mnist.py',  # named through DATASETS
    'genjax/run/loop.py',
    'genjax/step/train_step.py',
  ):
    assert path in code, path
  for path in (
    'genjax/tasks/gan.py',
    'genjax/tasks/lm.py',
    'genjax/data/fruits.py',
    'genjax/tasks/families.py',  # registries: a new entry changes nothing measured
    'genjax/data/registry.py',
    'setup.cfg',  # environment: the record keeps the versions
  ):
    assert path not in code, path
  assert all(os.path.exists(os.path.join(records.ROOT, p)) for p in code)
  # `from genjax.models import VAE` resolves through the package's lazy _EXPORTS to the
  # one module; the other models are not code this record ran.
  assert 'genjax/models/vae.py' in code
  for path in ('genjax/models/seq2seq.py', 'genjax/models/transformer.py', 'genjax/models/gan.py'):
    assert path not in code, path


_RUNTIME_MODULES = '''
import json, runpy, sys
sys.argv = ['launch.main', *sys.argv[1:]]
try:
  runpy.run_module('launch.main', run_name='__main__', alter_sys=True)
except SystemExit as e:
  assert not e.code, e.code
print(json.dumps(sorted(m.__file__ for m in list(sys.modules.values())
                        if getattr(m, '__file__', None))))
'''


def test_the_static_closure_holds_every_module_a_run_imports(tmp_path):
  """The record's `code` is read without running anything: it must not miss a module that
  a real run loads (through a registry, a lazy package export or a function-level import)."""
  entry = results.ENTRIES['fruits_ae']
  done = subprocess.run(
    [
      sys.executable,
      '-c',
      _RUNTIME_MODULES,
      f'--config={entry.config}',
      f'--workdir={tmp_path / "run"}',
      '--config.train.steps=2',
      '--config.data.num_train=256',
      '--config.data.num_test=128',
      '--config.train.eval_every=2',
      '--config.train.checkpoint_every=2',
    ],
    cwd=records.ROOT,
    capture_output=True,
    text=True,
    check=True,
  )
  loaded = {
    os.path.relpath(f, records.ROOT)
    for f in json.loads(done.stdout.strip().splitlines()[-1])
    if os.path.relpath(f, records.ROOT).split(os.sep)[0] in records.PACKAGES
  }
  loaded -= set(records.NOT_CODE)
  assert 'genjax/models/autoencoder.py' in loaded
  assert not loaded - set(results._code(entry))


def _git(repo, *args):
  subprocess.run(
    ['git', '-c', 'user.name=t', '-c', 'user.email=t@t', *args],
    cwd=repo,
    check=True,
    capture_output=True,
  )


@pytest.fixture
def repo(tmp_path, monkeypatch):
  """A small git repository standing in for ours, with two files."""
  repo = tmp_path / 'repo'
  repo.mkdir()
  (repo / 'a.py').write_text('A = 1\n')
  (repo / 'b.py').write_text('B = 1\n')
  _git(repo, 'init', '-q')
  _git(repo, 'add', '.')
  _git(repo, 'commit', '-qm', 'first')
  monkeypatch.setattr(records, 'ROOT', str(repo))
  records._commits_touching.cache_clear()
  yield repo
  records._commits_touching.cache_clear()


def test_a_record_goes_stale_only_when_its_code_changes(repo):
  record = records.provenance(['a.py'])
  assert record['git']['uncommitted_code'] == []
  assert records.staleness(record) is None
  (repo / 'b.py').write_text('B = 2\n')
  _git(repo, 'commit', '-qam', 'change b')
  records._commits_touching.cache_clear()
  assert records.staleness(record) is None  # b.py is not code the record ran
  (repo / 'a.py').write_text('# A comment, and new layout.\nA = (\n  1\n)\n')
  _git(repo, 'commit', '-qam', 'comment a')
  records._commits_touching.cache_clear()
  assert records.staleness(record) is None  # the same program
  (repo / 'a.py').write_text('"""Docs."""\n\n\ndef f():\n  """What f does."""\n\n\nA = (\n  1\n)\n')
  _git(repo, 'commit', '-qam', 'f')
  records._commits_touching.cache_clear()
  assert 'f' in records.staleness(record)  # a new function is new code
  later = records.provenance(['a.py'])
  (repo / 'a.py').write_text(
    '"""Other docs."""\n\n\ndef f():\n  """Said again."""\n\n\nA = (\n  1\n)\n'
  )
  _git(repo, 'commit', '-qam', 'docstrings')
  records._commits_touching.cache_clear()
  assert records.staleness(later) is None  # docstrings are not code it ran
  (repo / 'a.py').write_text('A = 2\n')
  _git(repo, 'commit', '-qam', 'change a')
  records._commits_touching.cache_clear()
  assert 'change a' in records.staleness(record)


def test_a_record_of_uncommitted_code_says_so(repo):
  (repo / 'a.py').write_text('A = 3\n')
  record = records.provenance(['a.py', 'b.py'])
  assert record['git']['uncommitted_code'] == ['a.py']
  assert 'uncommitted' in records.staleness(record)


def test_other_processes_show_in_the_record():
  spinner = subprocess.Popen(
    [sys.executable, '-c', 'import time\nend = time.time() + 3\nwhile time.time() < end: pass']
  )
  try:
    with records.OtherLoad() as other:
      time.sleep(2)
  finally:
    spinner.wait()
  # One spinning process is a whole core's worth of `other` on any machine with few cores.
  assert other.share > 0.2 / max((os.cpu_count() or 1) / 2, 1)


def _fake_record(tmp_path, name, metrics, code):
  record = {
    'entry': name,
    'what': results.ENTRIES[name].what,
    **records.provenance(code),
    'commands': ['python -m launch.main ...', 'python -m launch.evaluate ...'],
    'wall_seconds': {'train': 209.4, 'evaluate': 3.6},
    'metrics': metrics,
  }
  record['machine']['xla_cpu_devices'] = 2
  record['machine']['other_processes_cpu_share'] = 0.31
  return record


def test_tables_show_each_figure_with_its_provenance(tmp_path, monkeypatch):
  monkeypatch.setattr(records, 'RESULTS_DIR', str(tmp_path / 'results'))
  monkeypatch.setattr(results, 'RESULTS_MD', str(tmp_path / 'results.md'))
  readme = tmp_path / 'README.md'
  shutil.copy(os.path.join(records.ROOT, 'README.md'), readme)
  monkeypatch.setattr(results, 'README', str(readme))
  metrics = {'denoised_psnr': 19.713, 'noisy_psnr': 9.381, 'mse': 0.012161, 'pca_mse': 0.01683}
  records.write('mnist_ae', _fake_record(tmp_path, 'mnist_ae', metrics, ['genjax/__init__.py']))
  assert json.loads((tmp_path / 'results' / 'mnist_ae.json').read_text())['name'] == 'mnist_ae'
  results.write_tables()
  table = (tmp_path / 'results.md').read_text()
  row = next(line for line in table.splitlines() if line.startswith('| `mnist_ae`'))
  assert '**denoised PSNR 19.71 dB, noisy 9.38 dB, MSE 0.01216, PCA MSE 0.01683**' in row
  assert '3 min 29 s' in row and '3.6 s' in row
  assert 'other processes used 31% of the cores' in row
  assert row.endswith('| yes |')
  assert '| `mnist_vae` |' in table and '`--only=mnist_vae`' in table  # no record yet
  rows = {
    line.split('|')[1].strip(): line for line in readme.read_text().splitlines() if '|' in line
  }
  assert rows['`experiments/mnist_ae.py`'].endswith('| denoised PSNR 19.71 dB |')
  assert rows['`experiments/mnist_vae.py`'].endswith('| — |')


def test_family_tables_put_every_generator_of_a_dataset_in_the_same_columns(tmp_path, monkeypatch):
  monkeypatch.setattr(records, 'RESULTS_DIR', str(tmp_path / 'results'))
  code = ['genjax/__init__.py']
  gan = {
    'fid': 19.5449,
    'fid_train_vs_test': 0.1247,
    'inception_score': 3.8855,
    'inception_score_test': 4.9001,
    'precision': 0.3515,
    'recall': 0.6366,
    'min_share': 0.1114,
    'num_samples': 10_000,
  }
  records.write('fruits_dcgan', _fake_record(tmp_path, 'fruits_dcgan', gan, code))
  vae = {'anomaly_auroc': 0.95, 'nll': 12930.0}  # recorded before it scored samples
  records.write('fruits_vae', _fake_record(tmp_path, 'fruits_vae', vae, code))
  found = records.load_all()
  commit = found['fruits_dcgan']['git']['commit'][:7]
  monkeypatch.setattr(family_tables, 'LOOKED_AT', {'fruits_dcgan': (commit, 'yes: fruits')})
  lines = family_tables.table('Fruits', ('fruits_vae', 'fruits_dcgan', 'fruits_diffusion'), found)
  rows = {line.split('|')[1].strip(): line for line in lines if line.startswith('| `')}
  assert rows['`fruits_dcgan`'] == (
    '| `fruits_dcgan` | gan | 19.54 | 3.89 | 0.351 | 0.637 | 0.111 |  | 10,000 | 3.5 min'
    ' | yes: fruits | yes |'
  )
  # A verdict on the grid of another record's run is shown as one to look at again.
  monkeypatch.setattr(family_tables, 'LOOKED_AT', {'fruits_dcgan': ('0000000', 'yes: fruits')})
  again = family_tables.table('Fruits', ('fruits_dcgan',), found)
  assert '| look again (the record of 0000000: yes: fruits) |' in again[4]
  assert 'no sample metrics' in rows['`fruits_vae`'] and '| vae |' in rows['`fruits_vae`']
  assert (
    'no record yet' in rows['`fruits_diffusion`'] and '| diffusion |' in rows['`fruits_diffusion`']
  )
  header = next(line for line in lines if line.startswith('| entry'))
  assert all(row.count('|') == header.count('|') for row in rows.values())
  assert 'real train images score FID 0.12' in lines[-2] and 'IS 4.90' in lines[-2]


def test_equal_calls_table_puts_diffusion_and_flow_at_the_same_model_calls(tmp_path, monkeypatch):
  monkeypatch.setattr(records, 'RESULTS_DIR', str(tmp_path / 'results'))
  code = ['genjax/__init__.py']

  def steps_record(rows, step=4_000):
    return {'num_samples': 1_000, 'step': step, 'results': rows, 'fid_by_steps': {}}

  flow = [
    {'sampler': 'euler', 'steps': 5, 'nfe': 5, 'fid': 30.123, 'label_accuracy': 0.81},
    {'sampler': 'euler', 'steps': 20, 'nfe': 20, 'fid': 6.5, 'label_accuracy': 0.97},
    {'sampler': 'heun', 'steps': 5, 'nfe': 9, 'fid': 12.0, 'label_accuracy': 0.9},
  ]
  name = 'mnist_flow_steps'
  records.write(name, _fake_record(tmp_path, name, steps_record(flow), code))
  lines = family_tables.equal_calls_table(records.load_all())
  text = '\n'.join(lines)
  # The diffusion record is missing: the table says how to make it, and shows the flow's.
  assert '--only=mnist_classifier,mnist_diffusion,mnist_diffusion_steps' in text
  rows = {line.split('|')[1].strip(): line for line in lines if line.startswith('| ')}
  assert rows['5'] == '| 5 | — | 30.12 (0.810) | — | — |'
  assert rows['9'] == '| 9 | — | — | — | 12.00 (0.900) |'
  assert list(rows)[1:] == ['5', '9', '20']  # by model calls, after the header
  diffusion = [{'sampler': 'ddim', 'steps': 20, 'nfe': 20, 'fid': 4.0, 'label_accuracy': 0.99}]
  name = 'mnist_diffusion_steps'
  records.write(name, _fake_record(tmp_path, name, steps_record(diffusion), code))
  lines = family_tables.equal_calls_table(records.load_all())
  assert '| 20 | 4.00 (0.990) | 6.50 (0.970) | — | — |' in lines
  assert not any('No record yet' in line for line in lines)
  assert '`mnist_flow_steps` (trained 4,000 steps)' in lines[-2]
  assert 'not yet a like-for-like' not in lines[-2]
  # A run trained longer than the other is named as such.
  records.write(name, _fake_record(tmp_path, name, steps_record(diffusion, 7_000), code))
  caption = family_tables.equal_calls_table(records.load_all())[-2]
  assert '(trained 7,000 steps)' in caption and 'not yet a like-for-like' in caption


def test_every_readme_experiments_row_has_the_header_s_cells():
  """The figures go in the last cell, so a row short of a cell puts them under the wrong
  heading (it once put python_code's loss under 'what it shows')."""
  with open(os.path.join(records.ROOT, 'README.md'), encoding='utf-8') as f:
    lines = f.read().splitlines()
  start = next(i for i, line in enumerate(lines) if line.startswith('| config |'))
  table = []
  for line in lines[start:]:
    if not line.startswith('|'):
      break
    table.append(line)
  cells = lambda line: len(line.replace('\\|', '').split('|'))
  assert len(table) > 10
  assert all(cells(line) == cells(table[0]) for line in table), [
    line for line in table if cells(line) != cells(table[0])
  ]
