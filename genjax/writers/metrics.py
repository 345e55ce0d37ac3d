"""Metric logging: one JSON object a line in workdir/metrics.jsonl, plus TensorBoard.

metrics.jsonl is the source of truth (plain text, survives anything, easy to
load with pandas); TensorBoard is for looking. Non-finite values, which strict
JSON cannot hold, are written as the strings "NaN", "Infinity" and "-Infinity"
(the spellings Python's float() and JavaScript both parse), and read_metrics
turns them back into floats.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import os
import time
import warnings
import wave
from pathlib import Path
from typing import Any, Mapping

import numpy as np

METRICS_FILE = 'metrics.jsonl'
TENSORBOARD_DIR = 'tensorboard'
_RESERVED = ('step', 'split', 'time')
_NON_FINITE = {'NaN': math.nan, 'Infinity': math.inf, '-Infinity': -math.inf}


def _to_json_value(name: str, value: Any) -> int | float | bool | str:
  """A plain python number (or a non-finite sentinel string) from numpy/jax scalars."""
  if hasattr(value, 'shape') and getattr(value, 'shape') not in ((), (1,)):
    raise ValueError(f'metric {name!r} must be a scalar, got shape {value.shape}.')
  if hasattr(value, 'item'):  # numpy / jax scalars and size-1 arrays
    value = value.item()
  if isinstance(value, bool):
    return value
  if isinstance(value, numbers.Integral):
    return int(value)
  if isinstance(value, numbers.Real):
    value = float(value)
    if math.isnan(value):
      return 'NaN'
    if math.isinf(value):
      return 'Infinity' if value > 0 else '-Infinity'
    return value
  raise TypeError(f'metric {name!r} must be a real number, got {type(value).__name__}.')


class MetricWriter:
  """Writes scalar metrics to workdir/metrics.jsonl and TensorBoard, images to TensorBoard.

  Opening an existing workdir appends to both (resume). With enabled=False (on
  every process but 0 of a multi-host run) every method is a no-op and nothing
  is created on disk.

  Usage:
    with MetricWriter(workdir, enabled=jax.process_index() == 0) as writer:
      writer.write(step, 'train', {'loss': loss})
  """

  def __init__(self, workdir: str | os.PathLike, enabled: bool = True):
    self.workdir = Path(workdir)
    self.enabled = enabled
    self._file = None
    self._tb = None
    if not enabled:
      return
    self.workdir.mkdir(parents=True, exist_ok=True)
    path = self.workdir / METRICS_FILE
    # A run killed mid-write leaves a partial last line; start ours on a fresh line.
    needs_newline = path.exists() and path.stat().st_size > 0 and not _ends_with_newline(path)
    self._file = open(path, 'a', encoding='utf-8')
    if needs_newline:
      self._file.write('\n')
    # Imported here so that importing genjax.writers stays cheap (protobuf etc.).
    from tensorboardX import SummaryWriter

    self._tb = SummaryWriter(logdir=str(self.workdir / TENSORBOARD_DIR))

  def write(self, step: int, split: str, metrics: Mapping[str, Any]) -> None:
    """Appends {"step", "split", "time", **metrics} to metrics.jsonl.

    TensorBoard gets one scalar per metric, tagged f"{split}/{name}".
    """
    if not self.enabled:
      return
    step = int(step)
    row: dict[str, Any] = {'step': step, 'split': split, 'time': time.time()}
    for name, value in metrics.items():
      if name in _RESERVED:
        raise ValueError(f'metric name {name!r} is reserved for the row itself {_RESERVED}.')
      row[name] = _to_json_value(name, value)
    self._file.write(json.dumps(row, allow_nan=False) + '\n')
    self._file.flush()  # a preempted run keeps every row written so far
    for name, value in row.items():
      if name in _RESERVED:
        continue
      scalar = _NON_FINITE[value] if isinstance(value, str) else float(value)
      self._tb.add_scalar(f'{split}/{name}', scalar, global_step=step)
    self._tb.flush()

  def write_images(self, step: int, name: str, grid: np.ndarray) -> None:
    """Writes one image (HWC or HW, uint8; float is taken as [0, 1]) to TensorBoard."""
    if not self.enabled:
      return
    grid = np.asarray(grid)
    if grid.ndim == 2:
      grid = grid[..., None]
    if grid.ndim != 3 or grid.shape[-1] not in (1, 3, 4):
      raise ValueError(f'write_images expects HWC with C in (1, 3, 4), got shape {grid.shape}.')
    if grid.dtype != np.uint8:
      grid = np.round(np.clip(grid.astype(np.float64), 0.0, 1.0) * 255).astype(np.uint8)
    if grid.shape[-1] == 1:  # tensorboardX expects 3 or 4 channels in HWC
      grid = np.repeat(grid, 3, axis=-1)
    self._tb.add_image(name, grid, global_step=int(step), dataformats='HWC')
    self._tb.flush()

  def write_audio(self, step: int, name: str, audio: np.ndarray, sample_rate: int) -> None:
    """Writes mono audio (float [L], values in [-1, 1]) to TensorBoard, which plays it.

    Encoded here as 16-bit WAV with the standard library: tensorboardX's own audio
    summary needs the `soundfile` package and its C library."""
    if not self.enabled:
      return
    from tensorboardX.proto.summary_pb2 import Summary  # pylint: disable=import-outside-toplevel

    audio = np.asarray(audio, np.float32)
    if audio.ndim != 1:
      raise ValueError(f'write_audio expects mono audio of shape [L], got {audio.shape}.')
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype('<i2')
    encoded = io.BytesIO()
    with wave.open(encoded, 'wb') as f:
      f.setnchannels(1)
      f.setsampwidth(2)
      f.setframerate(int(sample_rate))
      f.writeframes(pcm.tobytes())
    clip = Summary.Audio(
      sample_rate=float(sample_rate),
      num_channels=1,
      length_frames=len(pcm),
      encoded_audio_string=encoded.getvalue(),
      content_type='audio/wav',
    )
    summary = Summary(value=[Summary.Value(tag=name, audio=clip)])
    self._tb._get_file_writer().add_summary(summary, int(step))  # pylint: disable=protected-access
    self._tb.flush()

  def write_text(self, step: int, name: str, text: str) -> None:
    """Writes text (a language model's sample) to TensorBoard's text tab."""
    if not self.enabled:
      return
    # TensorBoard renders markdown; a code block keeps line breaks and indentation.
    self._tb.add_text(name, '```\n' + text + '\n```', global_step=int(step))
    self._tb.flush()

  def flush(self) -> None:
    if self.enabled:
      self._file.flush()
      self._tb.flush()

  def close(self) -> None:
    """Closes both files; safe to call twice."""
    if self._file is not None:
      self._file.close()
      self._file = None
    if self._tb is not None:
      self._tb.close()
      self._tb = None
    self.enabled = False

  def __enter__(self) -> 'MetricWriter':
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


def _ends_with_newline(path: Path) -> bool:
  with open(path, 'rb') as f:
    f.seek(-1, os.SEEK_END)
    return f.read(1) == b'\n'


def read_metrics(workdir: str | os.PathLike) -> list[dict[str, Any]]:
  """Rows of workdir/metrics.jsonl in file order; non-finite sentinels become floats.

  A resumed run may have re-logged steps that a preempted run had already
  written; rows are returned as written, so filter by step if that matters.
  An unparsable line (a write cut short by a kill) is skipped with a warning. Returns [] if
  the file does not exist.
  """
  path = Path(workdir) / METRICS_FILE
  if not path.exists():
    return []
  rows = []
  with open(path, encoding='utf-8') as f:
    for number, line in enumerate(f, start=1):
      line = line.strip()
      if not line:
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        warnings.warn(f'{path}:{number}: skipping an unparsable line (a write cut short?).')
        continue
      rows.append(
        {
          k: (
            _NON_FINITE[v] if k not in _RESERVED and isinstance(v, str) and v in _NON_FINITE else v
          )
          for k, v in row.items()
        }
      )
  return rows
