"""genjax.run.host_memory: with freed memory kept, a CPU step's big temporaries reuse their
pages instead of faulting fresh ones in on every call."""

import json
import os
import subprocess
import sys

import pytest

from genjax.run import host_memory

_VERSION = host_memory.glibc_version()
glibc_only = pytest.mark.skipif(_VERSION is None, reason='mallopt is glibc-only')

# A 96 MiB result a call: above glibc's mmap thresholds, so by default each call maps
# (and faults in) fresh pages. The setting has to be made before JAX's threads start,
# hence a fresh process for each side.
_FAULTS_PER_CALL = """
import json, resource, sys
if sys.argv[1] == 'keep':
  from genjax.run import host_memory
  said = host_memory.keep_freed_memory()
else:
  said = None
import jax, jax.numpy as jnp
a = jnp.ones((384, 256, 64))
b = jnp.ones((384, 64, 256))
f = jax.jit(lambda a, b: a @ b)
faults_a_call = []
for _ in range(12):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  jax.block_until_ready(f(a, b))
  faults_a_call.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
# The fewest after the first two. One heap fragments: a small allocation can land in the
# freed block, and the next block is then carved from fresh pages; on a loaded machine
# that happened on most calls (e.g. 24576, 0, 24576, 24576). Under glibc's default no
# call is free of faults, so one call without them is the mechanism working.
faults = min(faults_a_call[2:])
def resident_mib():
  with open('/proc/self/statm') as statm:
    return int(statm.read().split()[1]) * resource.getpagesize() / 2**20
released = None
if said:
  # The freed results (96 MiB each) stay resident until released.
  before = resident_mib()
  host_memory.release_freed_memory()
  released = before - resident_mib()
print(json.dumps({'said': said, 'faults': faults, 'released': released}))
"""


def _faults_per_call(mode: str) -> dict:
  env = dict(os.environ)
  env['XLA_FLAGS'] = '--xla_force_host_platform_device_count=1'
  proc = subprocess.run(
    [sys.executable, '-c', _FAULTS_PER_CALL, mode],
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
    check=True,
  )
  return json.loads(proc.stdout.strip().splitlines()[-1])


@glibc_only
def test_kept_memory_is_reused_without_page_faults():
  system, kept = _faults_per_call('system'), _faults_per_call('keep')
  # 96 MiB of 4 KiB pages is 24,576 faults.
  assert system['faults'] > 10_000, system
  assert kept['faults'] < 500, kept
  assert kept['released'] > 90, kept  # MiB given back: at least one freed result
  assert kept['said'].startswith(f'malloc (glibc {_VERSION}): one heap, no mmap')


def test_modes(monkeypatch):
  calls = []
  monkeypatch.setattr(host_memory, 'keep_freed_memory', lambda: calls.append(1) or 'kept')
  assert host_memory.apply('system') is None and not calls  # malloc left as it is
  assert host_memory.apply('keep') == 'kept' and calls == [1]
  with pytest.raises(ValueError, match=r"one of \('system', 'keep'\), got 'kep'"):
    host_memory.apply('kep')
  # Nothing was kept in this process: there is nothing to release.
  host_memory.release_freed_memory()
