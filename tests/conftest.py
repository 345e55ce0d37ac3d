"""Test setup: CPU only, 4 fake devices, datasets from ../shared/data."""

import os
import pathlib

# Before JAX is imported anywhere: multi-device code runs on 4 fake CPU devices.
os.environ['JAX_PLATFORMS'] = 'cpu'
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=4')
_SHARED = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data'
os.environ.setdefault('GENJAX_DATA_DIR', str(_SHARED))

REPO = pathlib.Path(__file__).resolve().parents[1]

# Tests compile the same small steps again and again; a persistent cache shared by the
# test processes (and the entry points they start) turns most compiles into cache reads.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', str(REPO / '.pytest_cache' / 'jax'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
