"""The scale-out benchmarks run end to end at their smallest: bench.accelerator's tiny
size (what a GPU or TPU machine runs at full size) and bench.memory's table."""

import json
import subprocess
import sys

from tests.conftest import REPO


def _run(args):
  """The bench module, run as a user runs it; it inherits the tests' XLA flags (4 devices,
  quick compiles: conftest)."""
  return subprocess.run(
    [sys.executable, '-m', *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
    check=False,
  )


def test_accelerator_script_runs_every_part_at_its_tiny_size(tmp_path):
  out = tmp_path / 'accelerator.json'
  done = _run(
    [
      'bench.accelerator',
      '--size=tiny',
      '--steps=2',
      '--gpt_batch_per_device=2',
      f'--workdir={tmp_path / "shakespeare"}',
      f'--out={out}',
    ]
  )
  assert done.returncode == 0, done.stderr[-3000:]
  table = json.loads(out.read_text())
  assert '4 x cpu' in table['title'].lower()
  what = [row[0] for row in table['rows']]
  assert [w.split(' ')[0] for w in what] == [
    'shakespeare_char',
    'GPT-2-small-shaped',
    'encoder-decoder',
    "mnist_diffusion's",
  ]
  measured = ' '.join(row[1] for row in table['rows'])
  for figure in ('val loss', 'tokens/s', 'MFU', 'target tokens/s', 'images/s'):
    assert figure in measured
  assert '| what | measured |' in done.stdout


def test_memory_table_shows_fsdp_holding_a_share_of_the_state(tmp_path):
  out = tmp_path / 'memory.json'
  done = _run(
    ['bench.memory', '--experiment=shakespeare_char', '--device_counts=1,4', f'--out={out}']
  )
  assert done.returncode == 0, done.stderr[-3000:]
  table = json.loads(out.read_text())
  one, four = table['figures']['1'], table['figures']['4']
  assert one['fsdp']['state_mib'] == one['jit']['state_mib']  # one device: nothing to split
  assert four['jit']['state_mib'] == one['jit']['state_mib']  # 'jit' copies it whole
  assert four['fsdp']['state_mib'] <= 0.30 * four['jit']['state_mib']
  assert four['fsdp']['step_mib'] < four['jit']['step_mib']
