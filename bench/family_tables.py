"""Families side by side: one table per dataset of every generator scored by that dataset's
classifier (FID, IS, precision, recall, class coverage), read from the records.

The experiments table lists each record's own figures; these put the VAE, the GANs and the
diffusion models in the same columns, so a reader compares families, not entries.
"""

from __future__ import annotations

import importlib

from bench import records

TABLES = (
  ('Fruits (32x32 RGB, 5 kinds)', ('fruits_vae', 'fruits_dcgan', 'fruits_diffusion')),
  (
    'MNIST',
    ('mnist_dcgan', 'mnist_cdcgan', 'mnist_diffusion', 'mnist_flow', 'mnist_vdm'),
  ),
  (
    'Fashion-MNIST',
    ('fashion_mnist_vae', 'fashion_mnist_dcgan', 'fashion_mnist_diffusion'),
  ),
)

# What a person saw in each record's last sample grid (runs/results/NAME/samples/), looked
# at when the record was made: the metrics do not say whether a grid reads as what the data
# shows (fruits, clothes).
# Written by hand, so a record made again needs its grid looked at again: each verdict
# names the commit of the record it belongs to; a record of another commit shows "look
# again".
LOOKED_AT = {
  'fruits_vae': ('8e980ac', 'no: blurred blobs of colour on purple and grey grounds'),
  'fruits_dcgan': (
    'c2c2265',
    'yes: smooth oranges and apples, bunches of grapes, pears and a few small bananas, on'
    ' pale grounds',
  ),
  'mnist_diffusion': (
    '12a3eef',
    'yes: 62 of 64 read as their class (a 3 drawn as a 5, an 8 as a 0)',
  ),
  'mnist_flow': (
    '5fd83fa',  # the grid of 63618b4's record again, pixel for pixel
    'yes: 61 of 64 read as their class (a 5 drawn as an open loop, a 9 as a P, a thin 4)',
  ),
  'mnist_vdm': (
    '88a65ed',
    'no: mostly stroke-like scribbles; a handful read as digits (a 1, a 3, a 0, a 7)',
  ),
  'fashion_mnist_diffusion': (
    '63618b4',
    'yes: T-shirts, trousers, pullovers, dresses, coats, shirts, strapped sandals, sneakers,'
    ' bags and ankle boots, some shirts with prints',
  ),
  'fruits_diffusion': (
    'd710893',
    'yes: soft, speckled apples, oranges and bunches of grapes, small yellow bananas and'
    ' pears, on grey and lilac grounds',
  ),
}

COLUMNS = (
  ('fid', 'FID', '{:.2f}'),
  ('inception_score', 'IS', '{:.2f}'),
  ('precision', 'precision', '{:.3f}'),
  ('recall', 'recall', '{:.3f}'),
  ('min_share', 'smallest class share', '{:.3f}'),
  ('label_accuracy', 'label accuracy', '{:.3f}'),
  ('num_samples', 'samples', '{:,}'),
)


def _family(name: str) -> str:
  return importlib.import_module(f'experiments.{name}').get_config().task


def _minutes(seconds: float) -> str:
  return f'{seconds / 60:.1f} min'


def _looked_at(name: str, record: dict) -> str:
  commit, verdict = LOOKED_AT.get(name, (None, ''))
  if commit is None:
    return ''
  if record['git']['commit'].startswith(commit):
    return verdict
  return f'look again (the record of {commit}: {verdict})'


def table(title: str, names: tuple[str, ...], found: dict[str, dict]) -> list[str]:
  """A markdown table of `names`' records (a row saying so where one is missing)."""
  header = [
    'entry',
    'family',
    *(label for _, label, _ in COLUMNS),
    'training',
    'its grid, looked at',
    'current?',
  ]
  lines = [f'### {title}', '', '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  reference, reference_stale = None, True
  for name in names:
    record = found.get(name)
    metrics = record['metrics'] if record else {}
    if 'fid' not in metrics:
      cells = ['its record has no sample metrics' if record else 'no record yet']
      cells += [''] * (len(header) - 3)
      lines.append(f'| `{name}` | {_family(name)} | ' + ' | '.join(cells) + ' |')
      continue
    cells = [fmt.format(metrics[key]) if key in metrics else '' for key, _, fmt in COLUMNS]
    wall = record['wall_seconds']
    stale = records.staleness(record)
    # The real-data figures of the first current record (a stale one's classifier may
    # since have been retrained), else of the first record.
    if reference is None or (reference_stale and not stale):
      reference, reference_stale = metrics, stale
    lines.append(
      f'| `{name}` | {_family(name)} | '
      + ' | '.join(cells)
      + f" | {_minutes(wall.get('train', 0))} | {_looked_at(name, record)}"
      + f" | {'stale' if stale else 'yes'} |"
    )
  if reference:
    lines += [
      '',
      f"With the same classifier, {reference['num_samples']:,} real train images score FID"
      f" {reference['fid_train_vs_test']:.2f} against as many test images, and the test set"
      f" IS {reference['inception_score_test']:.2f}. FID grows as the count of samples"
      ' shrinks: compare rows of the same count.',
    ]
  return [*lines, '']


# The two MNIST families at equal model calls a sample: (record, sampler, column label).
# DDIM and Euler make one call a step, Heun two (one on its last, Euler, step), so each
# pair of columns meets at the same counts.
EQUAL_CALLS = (
  ('mnist_diffusion_steps', 'ddim', 'diffusion, DDIM'),
  ('mnist_flow_steps', 'euler', 'flow, Euler'),
  ('mnist_diffusion_steps', 'heun', 'diffusion, Heun'),
  ('mnist_flow_steps', 'heun', 'flow, Heun'),
)


def equal_calls_table(found: dict[str, dict]) -> list[str]:
  """FID (label accuracy) of each (record, sampler) of EQUAL_CALLS by model calls a sample,
  from the bench.diffusion_steps records: the same noise and classes for every cell."""
  lines = ['### MNIST: diffusion and flow at equal model calls', '']
  cells = {}  # {(record, sampler): {nfe: text}}
  missing = {name: None for name, _, _ in EQUAL_CALLS if name not in found}  # in order
  for name, sampler, _ in EQUAL_CALLS:
    record = found.get(name)
    if record is None:
      continue
    for row in record['metrics']['results']:
      if row['sampler'] == sampler and 'fid' in row:
        accuracy = row.get('label_accuracy')
        text = f"{row['fid']:.2f}" + (f' ({accuracy:.3f})' if accuracy is not None else '')
        cells.setdefault((name, sampler), {})[row['nfe']] = text
  if missing:
    runs = ','.join(n.removesuffix('_steps') for n in missing)
    lines += [
      f"No record yet of {', '.join(f'`{n}`' for n in missing)}"
      f" (`python -m bench.results --only=mnist_classifier,{runs},{','.join(missing)}`).",
      '',
    ]
  if not cells:
    return lines
  stale = sorted({n for n, _ in cells if records.staleness(found[n])})
  header = ['model calls a sample', *(label for _, _, label in EQUAL_CALLS)]
  lines += ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for nfe in sorted({nfe for by_nfe in cells.values() for nfe in by_nfe}):
    row = [cells.get((n, s), {}).get(nfe, '—') for n, s, _ in EQUAL_CALLS]
    lines.append(f'| {nfe} | ' + ' | '.join(row) + ' |')
  numbers = {n: found[n]['metrics']['num_samples'] for n, _ in cells}
  # The training step of the run each record sampled: families compare only at equal steps.
  trained = {n: found[n]['metrics'].get('step') for n in numbers}
  of_run = lambda n: f' (trained {trained[n]:,} steps)' if trained[n] is not None else ''
  unequal = len(set(trained.values())) > 1
  lines += [
    '',
    'Classifier FID (label accuracy) of '
    + ' and '.join(f'{count:,} samples of `{n}`{of_run(n)}' for n, count in numbers.items())
    + ', each setting from the same noise and classes, with the runs\' guidance.'
    + (
      ' The runs trained different numbers of steps: not yet a like-for-like comparison.'
      if unequal
      else ''
    )
    + (f" Stale: {', '.join(f'`{n}`' for n in stale)}." if stale else ''),
  ]
  return [*lines, '']


def sections(found: dict[str, dict]) -> list[str]:
  lines = ['## Families side by side', '']
  for title, names in TABLES:
    lines += table(title, names, found)
  return [*lines, *equal_calls_table(found)]
