"""Opt-in: keep freed host memory in the process, so a big CPU step stops page-faulting its
temporaries in anew on every call.

XLA:CPU allocates a step's temporaries with malloc, on its worker threads, as one block a
device (2.6 GiB a device for the default-size `shakespeare_char` step), and frees it when
the step ends. glibc serves blocks that big with a fresh mmap and returns them with munmap
(over 32 MiB always; over 64 MiB from any thread but the main one, even with mmap turned
off), so the step can fault all its pages in again, one 4 KiB page at a time, each zeroed
by the kernel. `keep_freed_memory` makes glibc keep them for reuse instead.

It is a trade, hence opt-in (the records `lm` and `lm_kept_malloc` time that step both
ways; the closing note of issue 20 has the probe runs):
  - what it gains depends on the host's price of a fault, and on how many steps are in
    flight: on one host it made that step about a quarter faster, on another it lost;
  - resident memory: kept pages stay resident and one heap fragments, so a run holds
    about the sum of its phases' peaks (compiling, training, evaluating, sampling);
  - small steps: every thread then allocates from one heap under one lock, and steps
    that fault little ran slower.
Time both on your machine. The same settings without code, for any entry point
(`launch.main` included):

  MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1000000000000 python -m ...

From Python, `keep_freed_memory()` makes them, before JAX starts its threads (before the
first computation; `bench.lm --host_malloc=keep` does). Elsewhere than glibc (macOS,
musl) it does nothing.
"""

from __future__ import annotations

import ctypes

# mallopt's parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
# A trim threshold of -1 turns trimming off (mallopt(3)); mallopt takes a C int, so a
# threshold in bytes could keep at most 2 GiB, less than that step's temporaries.
_NEVER = -1
MODES = ('system', 'keep')

_libc = None  # set once memory is kept: release_freed_memory then has work to do


def _glibc():
  """(this process's C library, its glibc version), or (None, None) when it is not glibc."""
  try:
    libc = ctypes.CDLL(None)
    version = libc.gnu_get_libc_version
  except (OSError, AttributeError):
    return None, None
  version.restype = ctypes.c_char_p
  return libc, version().decode()


def glibc_version() -> str | None:
  """This process's glibc version, or None when malloc is not glibc's."""
  return _glibc()[1]


def keep_freed_memory() -> str | None:
  """Sets glibc's malloc to keep what is freed for reuse (see the module's docstring).

  Every thread then allocates from the main heap, never through mmap, and the heap is
  never trimmed. Call it before JAX starts its threads. Returns a line saying what it
  did, or None where malloc is not glibc's.
  """
  global _libc
  libc, version = _glibc()
  if libc is None:
    return None
  for param, value in ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER)):
    if libc.mallopt(param, value) != 1:
      raise OSError(f'glibc {version} refused mallopt({param}, {value})')
  _libc = libc
  return (
    f'malloc (glibc {version}): one heap, no mmap, no trimming: freed memory is kept for '
    'reuse and stays resident.'
  )


def release_freed_memory() -> None:
  """Gives what malloc holds free back to the system (malloc_trim), once memory is kept:
  after a phase whose allocations the next train step does not reuse (compiling,
  evaluating, sampling, saving). The next step faults its pages in once."""
  if _libc is not None:
    _libc.malloc_trim(0)


def apply(mode: str) -> str | None:
  """`mode` 'system' leaves malloc as it is; 'keep' calls `keep_freed_memory`."""
  if mode not in MODES:
    raise ValueError(f"host malloc mode must be one of {MODES}, got {mode!r}")
  return keep_freed_memory() if mode == 'keep' else None
