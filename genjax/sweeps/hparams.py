"""A sweep in TensorBoard's HParams dashboard: one row per point, swept fields as
hyperparameters, final metrics as metrics.

Written beside each point's own event files, as `<point>/tensorboard/hparams/`, so that
`tensorboard --logdir SWEEP_DIR` shows the points' curves and the table together.
Summarizing again replaces what an earlier summary wrote.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any, Sequence

from tensorboardX import SummaryWriter
from tensorboardX.summary import hparams as hparams_summaries

SUBDIR = Path('tensorboard') / 'hparams'


def _hparam(value: Any) -> bool | int | float | str:
  """What the dashboard takes: numbers, booleans and strings (a tuple as its text)."""
  return value if isinstance(value, (bool, int, float, str)) else str(value)


def write(
  sweep_dir: str | Path,
  rows: Sequence[dict[str, Any]],
  fields: Sequence[str],
  metrics: Sequence[str],
) -> list[Path]:
  """One HParams session per run of `rows` (summary.collect's); returns the folders."""
  written = []
  for row in rows:
    folder = Path(sweep_dir) / row['run'] / SUBDIR
    shutil.rmtree(folder, ignore_errors=True)
    values = {
      m: float(row[m])
      for m in metrics
      if isinstance(row.get(m), (int, float)) and math.isfinite(row[m])
    }
    if not values:
      continue  # a run with nothing measured yet has no row to show
    metric_values = {f'hparam/{m}': v for m, v in values.items()}
    summaries = hparams_summaries({f: _hparam(row[f]) for f in fields if f in row}, metric_values)
    # Its own writer in its own folder (SummaryWriter.add_hparams would also leave an empty
    # event file in the point's own folder at every summary).
    with SummaryWriter(str(folder)) as writer:
      for summary in summaries:  # the experiment, session start and session end
        writer.file_writer.add_summary(summary)
      for tag, value in metric_values.items():
        writer.add_scalar(tag, value)
    written.append(folder)
  return written
