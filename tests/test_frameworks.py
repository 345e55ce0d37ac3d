"""bench.frameworks' verdict: a side is faster only beyond the control's own spread."""

import pytest

from bench import frameworks


def test_rank_test_gives_the_exact_mann_whitney_p_values():
  # Complete separation of 5 and 5: 2 of the 252 splits are as lopsided (either way).
  assert frameworks.rank_test_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)
  # ... and of 3 and 3: 2 of 20, so 3 pairs can never reach p < 0.05.
  assert frameworks.rank_test_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
  # Interleaved samples: every split is at least as lopsided as a perfectly balanced one.
  assert frameworks.rank_test_p([1, 4, 5, 8], [2, 3, 6, 7]) == pytest.approx(1.0)


def test_verdict_needs_both_a_range_without_1_and_a_difference_from_the_control():
  control = [0.97, 1.01, 1.03, 0.99, 1.02]
  said, p = frameworks.verdict([0.71, 0.73, 0.70, 0.75, 0.72], control)
  assert said.startswith('PyTorch faster') and p < 0.05
  said, _ = frameworks.verdict([1.2, 1.3, 1.25, 1.22, 1.28], control)
  assert said.startswith('JAX faster')
  # The range includes 1: parity, however the ranks fall.
  assert frameworks.verdict([0.9, 0.92, 1.01, 0.93, 0.91], control)[0].startswith('parity')
  # Below 1 throughout, but so is a control this noisy: parity.
  noisy = [0.70, 0.95, 0.80, 1.10, 0.75]
  assert frameworks.verdict([0.72, 0.9, 0.78, 0.85, 0.74], noisy)[0].startswith('parity')
  # Three pairs cannot separate from three controls at p < 0.05.
  assert frameworks.verdict([0.7, 0.71, 0.72], [0.99, 1.0, 1.01])[0].startswith('parity')
