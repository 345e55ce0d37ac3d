"""GAN metrics: FID, inception score, precision/recall, class coverage, batched_apply."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from genjax.evaluation.gan_metrics import (
  batched_apply,
  class_coverage,
  coverage_summary,
  feature_statistics,
  fid,
  frechet_distance,
  inception_score,
  precision_recall,
)


def _random_cov(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T / d + 0.1 * np.eye(d)


# ---------------------------------------------------------------- FID


def test_feature_statistics_are_float64_mean_and_unbiased_cov():
  x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
  mu, cov = feature_statistics(x)
  assert mu.dtype == np.float64 and cov.dtype == np.float64
  assert mu.shape == (4,) and cov.shape == (4, 4)
  np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
  centred = x.astype(np.float64) - mu
  np.testing.assert_allclose(cov, centred.T @ centred / 49, rtol=1e-10)


def test_fid_of_identical_features_is_zero():
  x = np.random.default_rng(1).normal(size=(500, 32)) * 3.0
  scale = np.trace(feature_statistics(x)[1])
  assert 0.0 <= fid(x, x) <= 1e-6 * scale


def test_frechet_distance_diagonal_closed_form():
  rng = np.random.default_rng(2)
  d = 16
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  a, b = rng.uniform(0.1, 4.0, d), rng.uniform(0.1, 4.0, d)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
  assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_full_covariances_matches_eigenvalues_of_product():
  # Tr (C1 C2)^{1/2} = sum sqrt(eig(C1 C2)): C1 C2 is similar to a PSD matrix.
  rng = np.random.default_rng(3)
  d = 12
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  c1, c2 = _random_cov(rng, d), _random_cov(rng, d)
  trace_sqrt = np.sum(np.sqrt(np.linalg.eigvals(c1 @ c2).real))
  expected = np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * trace_sqrt
  assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-9)
  # Symmetric.
  assert frechet_distance(mu2, c2, mu1, c1) == pytest.approx(expected, rel=1e-9)


def test_fid_of_samples_approaches_the_closed_form_and_is_symmetric():
  rng = np.random.default_rng(4)
  d, n = 4, 20000
  a = rng.normal(size=(n, d)) * np.sqrt([1.0, 2.0, 0.5, 1.0]) + [1.0, 0.0, 0.0, 0.0]
  b = rng.normal(size=(n, d)) * np.sqrt([1.0, 0.5, 0.5, 3.0])
  expected = 1.0 + np.sum((np.sqrt([1.0, 2.0, 0.5, 1.0]) - np.sqrt([1.0, 0.5, 0.5, 3.0])) ** 2)
  assert fid(a, b) == pytest.approx(expected, rel=0.05)
  assert fid(a, b) == pytest.approx(fid(b, a), rel=1e-9)


def test_fid_with_singular_covariances_is_finite():
  # Fewer samples than dimensions: rank-deficient covariances, where sqrtm gives NaN.
  rng = np.random.default_rng(5)
  value = fid(rng.normal(size=(10, 64)), rng.normal(size=(10, 64)) + 0.5)
  assert math.isfinite(value) and value > 0


def test_fid_bad_input_fails():
  with pytest.raises(ValueError, match='at least 2'):
    fid(np.zeros((1, 3)), np.zeros((5, 3)))
  with pytest.raises(ValueError, match='NaN'):
    fid(np.full((4, 3), np.nan), np.zeros((5, 3)))
  with pytest.raises(ValueError, match='covariances'):
    frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ---------------------------------------------------------------- inception score


@pytest.mark.parametrize('k', [2, 10])
def test_inception_score_of_confident_uniform_predictions_is_k(k):
  probs = np.eye(k)[np.arange(100 * k) % k]  # every split holds each class equally
  mean, std = inception_score(probs, splits=10)
  assert mean == pytest.approx(k, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_identical_predictions_is_one():
  probs = np.tile([[0.7, 0.2, 0.1]], (50, 1))
  mean, std = inception_score(probs, splits=5)
  assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)
  # Collapsed to one confident class: also 1.
  assert inception_score(np.eye(3)[np.zeros(30, int)], splits=3)[0] == pytest.approx(1.0)


def test_inception_score_matches_direct_formula_and_splits():
  rng = np.random.default_rng(6)
  logits = rng.normal(size=(103, 5)) * 2
  probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  marginal = probs.mean(0)
  direct = math.exp(np.mean(np.sum(probs * (np.log(probs) - np.log(marginal)), axis=1)))
  assert inception_score(probs, splits=1) == pytest.approx((direct, 0.0), rel=1e-12)
  parts = [
    math.exp(np.mean(np.sum(p * (np.log(p) - np.log(p.mean(0))), axis=1)))
    for p in np.array_split(probs, 4)
  ]
  mean, std = inception_score(probs, splits=4)
  assert mean == pytest.approx(np.mean(parts), rel=1e-12)
  assert std == pytest.approx(np.std(parts), rel=1e-10) and std > 0
  assert 1.0 <= mean <= 5.0


def test_inception_score_rejects_logits_and_bad_splits():
  with pytest.raises(ValueError, match='softmax'):
    inception_score(np.random.default_rng(0).normal(size=(20, 4)))
  with pytest.raises(ValueError, match='splits'):
    inception_score(np.eye(4), splits=10)


# ---------------------------------------------------------------- precision / recall


def _clusters(rng, centres, per_cluster, dim, spread=0.1):
  points = [c + spread * rng.normal(size=(per_cluster, dim)) for c in centres]
  return np.concatenate(points).astype(np.float32)


def _brute_force_precision_recall(real, fake, k):
  def sq(a, b):
    return ((a[:, None, :].astype(np.float64) - b[None, :, :]) ** 2).sum(-1)

  real_radii = np.sort(sq(real, real), axis=1)[:, k]
  fake_radii = np.sort(sq(fake, fake), axis=1)[:, k]
  precision = np.mean(np.any(sq(fake, real) <= real_radii[None, :], axis=1))
  recall = np.mean(np.any(sq(real, fake) <= fake_radii[None, :], axis=1))
  return precision, recall


def test_precision_recall_of_identical_sets_is_one():
  x = np.random.default_rng(7).normal(size=(300, 16))
  assert precision_recall(x, x, k=3, batch_size=128) == (1.0, 1.0)


def test_precision_recall_of_far_apart_clusters_is_zero():
  rng = np.random.default_rng(8)
  real = rng.normal(size=(200, 8))
  fake = rng.normal(size=(150, 8)) + 100.0
  assert precision_recall(real, fake, batch_size=64) == (0.0, 0.0)


def test_precision_recall_when_fake_covers_half_the_modes():
  rng = np.random.default_rng(9)
  dim = 2
  centres = 10.0 * np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
  real = _clusters(rng, centres, 250, dim)
  fake = _clusters(rng, centres[:2], 250, dim)  # fresh draws from two of the four modes
  # k=5: with k=3 a few tail samples of the same distribution fall outside (~0.97).
  precision, recall = precision_recall(real, fake, k=5, batch_size=300)
  assert precision >= 0.98
  assert recall == pytest.approx(0.5, abs=0.02)


def test_precision_recall_matches_brute_force_with_ragged_batches():
  rng = np.random.default_rng(10)
  real = rng.normal(size=(83, 5))
  fake = rng.normal(size=(61, 5)) * 1.3 + 0.4
  expected = _brute_force_precision_recall(real, fake, k=4)
  assert precision_recall(real, fake, k=4, batch_size=16) == pytest.approx(expected, abs=1e-12)
  assert 0.0 < expected[0] < 1.0 and 0.0 < expected[1] < 1.0


def test_precision_recall_bad_input_fails():
  with pytest.raises(ValueError, match='feature sizes'):
    precision_recall(np.zeros((10, 3)), np.zeros((10, 4)))
  with pytest.raises(ValueError, match='at least 4'):
    precision_recall(np.zeros((3, 3)), np.zeros((10, 3)), k=3)


# ---------------------------------------------------------------- class coverage


def test_class_coverage_shares_sum_to_one_and_summary():
  labels = np.array([0, 0, 1, 1, 1, 3, 3, 3])
  shares = class_coverage(labels, num_classes=5)
  assert shares.shape == (5,) and shares.sum() == pytest.approx(1.0)
  np.testing.assert_allclose(shares, [2 / 8, 3 / 8, 0, 3 / 8, 0])
  assert coverage_summary(shares) == {'min_share': 0.0, 'max_share': 0.375, 'classes_missing': 2}
  # Probabilities (or logits) [N, K]: their argmax.
  probs = np.eye(5)[labels] * 0.6 + 0.08
  np.testing.assert_allclose(class_coverage(probs, 5), shares)


def test_class_coverage_bad_labels_fail():
  with pytest.raises(ValueError, match=r'\[0, 3\)'):
    class_coverage(np.array([0, 1, 3]), num_classes=3)
  with pytest.raises(ValueError, match='num_classes'):
    class_coverage(np.ones((4, 2)), num_classes=3)


# ---------------------------------------------------------------- batched_apply


def test_batched_apply_equals_unbatched_and_compiles_once():
  traces = []

  def fn(x):
    traces.append(x.shape)
    return jnp.tanh(x.reshape(x.shape[0], -1) @ jnp.ones((12, 3))) * 2.0

  images = np.random.default_rng(11).uniform(size=(7, 2, 2, 3)).astype(np.float32)
  out = batched_apply(fn, images, batch_size=3)
  assert isinstance(out, np.ndarray) and out.shape == (7, 3)
  assert traces == [(3, 2, 2, 3)]  # one trace: the last batch was padded to 3 rows
  np.testing.assert_allclose(out, np.asarray(fn(jnp.asarray(images))), rtol=1e-6)


def test_batched_apply_takes_new_weights_without_compiling_again():
  traces = []

  def fn(weights, x):
    traces.append(x.shape)
    return x.reshape(x.shape[0], -1) @ weights

  images = np.random.default_rng(12).uniform(size=(5, 2, 3)).astype(np.float32)
  for scale in (1.0, 2.0):  # the next checkpoint's weights, as periodic evaluation has them
    weights = jnp.full((6, 2), scale)
    out = batched_apply(fn, images, batch_size=4, args=(weights,))
    np.testing.assert_allclose(out, images.reshape(5, 6) @ np.asarray(weights), rtol=1e-6)
  assert traces == [(4, 2, 3)]  # weights are arguments of one compiled program


def test_batched_apply_small_n_and_pytree_outputs():
  images = np.arange(10, dtype=np.float32).reshape(5, 2)
  out = batched_apply(lambda x: {'sum': x.sum(1), 'id': x}, images, batch_size=500)
  np.testing.assert_array_equal(out['sum'], images.sum(1))
  np.testing.assert_array_equal(out['id'], images)
