"""Opt-in: keep freed host memory in the process, so a big CPU step stops page-faulting its
temporaries in anew on every call.

XLA:CPU allocates a step's temporaries with malloc, on its worker threads, as one block a
device (2.6 GiB a device for the default-size `shakespeare_char` step), and frees it when
the step ends. glibc serves blocks that big with a fresh mmap and returns them with munmap
(over 32 MiB always; over 64 MiB from any thread but the main one, even with mmap turned
off), so every step faults its pages in again, one 4 KiB page at a time, each zeroed by
the kernel. Measured on a 2-core Intel Xeon: that step took 625,150 minor faults and
about 9 s of system time a call, and ran 9.0-9.8 s; with freed memory kept, 0 faults and
6.6-7.3 s. A [384, 256, 64] x [384, 64, 256] batched matmul ran at 37 GFLOP/s (52 of its
87 ms in the kernel), and at 89 GFLOP/s with memory kept.

It is a trade, hence opt-in:
  - resident memory: kept pages stay resident and one heap fragments, so a 30-step run of
    that size peaked at 11.4 GB before its first evaluation and 16.8 GB after it, against
    6.6 GB for the whole run with glibc's default (`release_freed_memory` after each
    phase that is not a train step brought the latter to 15.4 GB);
  - small steps: every thread then allocates from one heap under one lock, and steps
    that fault little got slower: `shakespeare_char:cpu` 36.0-38.6 against 43.9-47.8 ms
    a step, `mnist_vae` 11.6-12.2 against 12.5-15.5 ms (two interleaved rounds).
So it pays for a CPU step whose temporaries are hundreds of MiB or more, with memory to
spare. The same settings without code, for any entry point (`launch.main` included):

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


def glibc_version() -> str | None:
  """This process's glibc version, or None when malloc is not glibc's."""
  try:
    version = ctypes.CDLL(None).gnu_get_libc_version
  except (OSError, AttributeError):
    return None
  version.restype = ctypes.c_char_p
  return version().decode()


def keep_freed_memory() -> str | None:
  """Sets glibc's malloc to keep what is freed for reuse (see the module's docstring).

  Every thread then allocates from the main heap, never through mmap, and the heap is
  never trimmed. Call it before JAX starts its threads. Returns a line saying what it
  did, or None where malloc is not glibc's.
  """
  global _libc
  version = glibc_version()
  if version is None:
    return None
  libc = ctypes.CDLL(None)
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
