"""Area under the ROC curve, exact and tie-aware.

Used for anomaly detection: an autoencoder's reconstruction error (or a VAE's
negative log-likelihood) is the score, and held-out anomalous examples are the
positives.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _average_ranks(values: np.ndarray) -> np.ndarray:
  """1-based ranks of `values`, tied values sharing the mean of their ranks."""
  order = np.argsort(values, kind='mergesort')
  sorted_values = values[order]
  # Start index of every run of equal values in the sorted array.
  is_new = np.empty(len(values), dtype=bool)
  is_new[0] = True
  np.not_equal(sorted_values[1:], sorted_values[:-1], out=is_new[1:])
  starts = np.flatnonzero(is_new)
  ends = np.append(starts[1:], len(values))  # exclusive
  # A run occupying 0-based positions [s, e) has 1-based ranks s+1..e; mean (s+1+e)/2.
  run_ranks = (starts + 1 + ends) / 2.0
  ranks = np.empty(len(values), dtype=np.float64)
  ranks[order] = np.repeat(run_ranks, ends - starts)
  return ranks


def auroc(labels: ArrayLike, scores: ArrayLike) -> float:
  """Exact area under the ROC curve.

  Equals P(score of a random positive > score of a random negative), with ties
  counted as 1/2: the Mann-Whitney U statistic with average ranks, divided by
  n_pos * n_neg. O(n log n) (one sort).

  Args:
    labels: [N] binary labels; 1 (or True) = anomalous / positive.
    scores: [N] real scores; higher = more anomalous.

  Returns:
    AUROC in [0, 1]: 1.0 when every positive outscores every negative, 0.0 when
    the order is inverted, 0.5 for uninformative scores.

  Raises:
    ValueError: shapes differ, labels are not binary, scores are not finite, or
      only one class is present (the AUROC is then undefined).
  """
  labels = np.asarray(labels).reshape(-1)
  scores = np.asarray(scores, dtype=np.float64).reshape(-1)
  if labels.shape != scores.shape:
    raise ValueError(f'auroc: labels and scores differ in size: {labels.size} vs {scores.size}.')
  if not np.all((labels == 0) | (labels == 1)):
    raise ValueError(f'auroc: labels must be 0/1 (or bool); got values {np.unique(labels)[:10]}.')
  if not np.all(np.isfinite(scores)):
    raise ValueError('auroc: scores contain NaN or inf; a diverged model cannot be ranked.')
  positive = labels.astype(bool)
  n_pos = int(positive.sum())
  n_neg = positive.size - n_pos
  if n_pos == 0 or n_neg == 0:
    raise ValueError(
      f'auroc: needs both classes, got {n_pos} positive and {n_neg} negative '
      'labels; the ROC curve is undefined with a single class.'
    )
  ranks = _average_ranks(scores)
  u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
  return float(u / (n_pos * n_neg))
