"""A sweep's results in one table: DIR/summary.csv, DIR/summary.md, one SVG per swept
field (`summary_<field>.svg`: the chosen metric against the field's values), and
TensorBoard's HParams dashboard (genjax.sweeps.hparams).

One row a run: its overrides (columns named as the fields, `optim.learning_rate`), its
final metrics (the last `train` row of metrics.jsonl under their own names, `loss`; the
last `test` row as `test.loss`; eval.json's numbers as `eval.nll`), its status and wall
time; sorted by the chosen metric, best first, runs without it last.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from pathlib import Path
from typing import Any

from genjax.config import ConfigError
from genjax.sweeps import hparams, spec, state, svg
from genjax.writers.metrics import read_metrics

_SKIP = ('step', 'split', 'time')


@dataclasses.dataclass
class Summary:
  rows: list[dict[str, Any]]  # sorted, best first
  fields: list[str]  # swept fields
  metrics: list[str]  # metric columns
  metric: str
  mode: str
  best: dict[str, Any] | None  # None while no run has the metric
  files: list[Path]
  sweep_dir: Path

  def headline(self) -> str:
    """The sentence naming the best run (or why there is none yet)."""
    if self.best is None:
      if self.metrics and self.metric not in self.metrics:  # a typo, or another family's name
        return (
          f'Best: no run logged the metric {self.metric!r}; pass --metric= one of '
          f'{", ".join(m for m in self.metrics if m != "step")}.'
        )
      return f'Best ({self.mode} {self.metric}): none yet (no run has a finite {self.metric}).'
    return (
      f'Best ({self.mode} {self.metric}): {self.best["run"]} with {self.metric}='
      f'{self.best[self.metric]:.6g} (in {self.sweep_dir / self.best["run"]}).'
    )


def _final_metrics(run_dir: Path) -> dict[str, Any]:
  out: dict[str, Any] = {}
  last: dict[str, dict[str, Any]] = {}
  for row in read_metrics(run_dir):
    last[row.get('split', '')] = row
  if 'train' in last:
    out['step'] = last['train']['step']
    out.update({k: v for k, v in last['train'].items() if k not in _SKIP})
  if 'test' in last:
    out.update({f'test.{k}': v for k, v in last['test'].items() if k not in _SKIP})
  results = state.read_json(run_dir / 'eval.json') or {}
  out.update(
    {
      f'eval.{k}': v
      for k, v in results.items()
      if k != 'step' and isinstance(v, (int, float)) and not isinstance(v, bool)
    }
  )
  return out


def collect(sweep_dir: str | os.PathLike) -> tuple[list[dict[str, Any]], list[str], list[str]]:
  """(rows, swept fields, metric names) of every run in DIR/sweep.json, in its order."""
  sweep_dir = Path(sweep_dir)
  runs = state.read_manifest(sweep_dir)
  if not runs:
    raise ConfigError(f'{sweep_dir} holds no sweep (no {state.MANIFEST}).')
  rows, fields, metrics = [], {}, {}
  for run in runs:
    point = {k: tuple(v) if isinstance(v, list) else v for k, v in run['point'].items()}
    status = state.read_status(sweep_dir / run['name'])
    values = _final_metrics(sweep_dir / run['name'])
    fields.update(dict.fromkeys(point))
    metrics.update(dict.fromkeys(values))
    rows.append(
      {
        'run': run['name'],
        **point,
        **values,
        'status': status['status'],
        'wall_seconds': status.get('wall_seconds', 0.0),
        'attempts': status.get('attempts', 0),
      }
    )
  return rows, sorted(fields), sorted(metrics, key=lambda m: (m.count('.'), m != 'step', m))


def _score(row: dict[str, Any], metric: str, mode: str) -> float | None:
  value = row.get(metric)
  if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
    return None
  return value if mode == 'min' else -value


def _cell(value: Any, precise: bool) -> str:
  if value is None:
    return ''
  if isinstance(value, float) and not precise:
    return f'{value:.4g}'
  return spec.format_value(value) if isinstance(value, (tuple, list, float)) else str(value)


def _write(path: Path, text: str) -> None:
  tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
  tmp.write_text(text)
  os.replace(tmp, path)


def summarize(sweep_dir: str | os.PathLike, metric: str = 'loss', mode: str = 'min') -> Summary:
  """Writes summary.csv, summary.md and the plots; returns what it wrote."""
  if mode not in ('min', 'max'):
    raise ConfigError(f'--mode must be min or max, got {mode!r}.')
  sweep_dir = Path(sweep_dir)
  rows, fields, metrics = collect(sweep_dir)
  rows.sort(key=lambda r: (_score(r, metric, mode) is None, _score(r, metric, mode) or 0.0))
  best = rows[0] if rows and _score(rows[0], metric, mode) is not None else None
  # The ranking metric first, where it exists: the column a reader looks for.
  metrics = sorted(metrics, key=lambda m: m != metric)
  columns = ['run', *fields, *metrics, 'status', 'wall_seconds', 'attempts']
  files = [sweep_dir / 'summary.csv', sweep_dir / 'summary.md']

  buffer = io.StringIO()
  writer = csv.writer(buffer)
  writer.writerow(columns)
  for row in rows:
    writer.writerow([_cell(row.get(c), precise=True) for c in columns])
  _write(files[0], buffer.getvalue())

  plots = []
  scored = [r for r in rows if _score(r, metric, mode) is not None]
  for field in fields:
    have = [r for r in scored if field in r]
    if not have or len({spec.format_value(r[field]) for r in rows if field in r}) < 2:
      continue  # a field the sweep holds constant has nothing to show
    path = sweep_dir / f'summary_{field}.svg'
    _write(
      path,
      svg.scatter(
        [r[field] for r in have],
        [r[metric] for r in have],
        x_label=field,
        y_label=metric,
        title=f'{metric} vs {field} ({len(have)} runs; red: best)',
        highlight=have.index(best) if best in have else None,
      ),
    )
    plots.append(path)
  files += plots
  hparams.write(sweep_dir, rows, fields, [m for m in metrics if m != 'step'])

  result = Summary(rows, fields, metrics, metric, mode, best, files, sweep_dir)
  lines = [
    f'# Sweep {sweep_dir.name}',
    '',
    result.headline(),
    '',
    '| ' + ' | '.join(columns) + ' |',
    '|' + '---|' * len(columns),
  ]
  lines += [
    '| ' + ' | '.join(_cell(row.get(c), precise=False) for c in columns) + ' |' for row in rows
  ]
  lines += ['', *(f'![{metric} vs {p.stem[len("summary_") :]}]({p.name})' for p in plots)]
  _write(files[1], '\n'.join(lines) + '\n')
  return result


def table(summary: Summary, max_rows: int = 30) -> str:
  """The summary as aligned text for the terminal: run, fields, the metric, status, time."""
  columns = ['run', *summary.fields, summary.metric, 'status', 'wall_seconds']
  if summary.metric not in summary.metrics:
    columns.remove(summary.metric)
  cells = [[_cell(r.get(c), precise=False) for c in columns] for r in summary.rows[:max_rows]]
  widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
  lines = ['  '.join(c.ljust(w) for c, w in zip(columns, widths))]
  lines += ['  '.join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
  if len(summary.rows) > max_rows:
    lines.append(f'... {len(summary.rows) - max_rows} more in summary.csv')
  return '\n'.join(lines)
