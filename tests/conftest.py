"""Test setup: CPU only, 4 fake devices, datasets from ../shared/data."""

import os
import pathlib

# Before JAX is imported anywhere: multi-device code runs on 4 fake CPU devices.
os.environ['JAX_PLATFORMS'] = 'cpu'
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=4')
_SHARED = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data'
os.environ.setdefault('GENJAX_DATA_DIR', str(_SHARED))

REPO = pathlib.Path(__file__).resolve().parents[1]
