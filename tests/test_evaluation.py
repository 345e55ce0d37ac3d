"""Tests for genjax.evaluation: AUROC, image metrics, PCA baseline, IWAE log-likelihood."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.evaluation.auroc import auroc
from genjax.evaluation.image_metrics import mse, per_image_mse, psnr
from genjax.evaluation.iwae import chunk_rng, estimate_log_likelihood, iwae_bound
from genjax.evaluation.pca import fit_pca, pca_reconstruct, pca_reconstruction_mse


# ---------------------------------------------------------------- AUROC


def _auroc_pairwise(labels, scores):
  pos, neg = scores[labels == 1], scores[labels == 0]
  diff = pos[:, None] - neg[None, :]
  return ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size


@pytest.mark.parametrize('seed', range(5))
def test_auroc_matches_pairwise_count_with_ties(seed):
  rng = np.random.default_rng(seed)
  n = 300
  labels = rng.integers(0, 2, n)
  scores = rng.integers(0, 8, n).astype(np.float64) + labels * rng.integers(0, 3, n)  # many ties
  assert auroc(labels, scores) == pytest.approx(_auroc_pairwise(labels, scores), abs=1e-12)


def test_auroc_perfect_inverted_and_constant():
  labels = np.array([0, 0, 0, 1, 1])
  assert auroc(labels, [0.1, 0.2, 0.3, 0.9, 1.0]) == 1.0
  assert auroc(labels, [0.9, 0.8, 0.7, 0.1, 0.0]) == 0.0
  assert auroc(labels, np.zeros(5)) == 0.5
  assert auroc(labels.astype(bool), jnp.array([0.1, 0.2, 0.3, 0.9, 1.0])) == 1.0


def test_auroc_errors():
  with pytest.raises(ValueError, match='both classes'):
    auroc(np.ones(4), np.arange(4.0))
  with pytest.raises(ValueError, match='0/1'):
    auroc(np.array([0, 1, 2]), np.arange(3.0))
  with pytest.raises(ValueError, match='NaN'):
    auroc(np.array([0, 1]), np.array([0.0, np.nan]))


# ---------------------------------------------------------------- MSE / PSNR


def test_mse_and_per_image_mse():
  x = np.zeros((2, 4, 4, 1))
  y = x.copy()
  y[0] += 0.5  # image 0 off by 0.5 everywhere, image 1 exact
  np.testing.assert_allclose(per_image_mse(x, y), [0.25, 0.0])
  assert mse(x, jnp.asarray(y)) == pytest.approx(0.125)
  with pytest.raises(ValueError, match='shapes differ'):
    mse(x, y[:1])


def test_psnr_constant_offset_and_identical():
  x = np.full((3, 8, 8, 3), 0.5)
  # Offset 0.1 => MSE 0.01 => PSNR = 10 log10(1 / 0.01) = 20 dB.
  assert psnr(x, x + 0.1) == pytest.approx(20.0)
  assert psnr(255 * x, 255 * x + 25.5, max_value=255.0) == pytest.approx(20.0)
  assert psnr(x, x) == math.inf  # documented: an exact reconstruction is +inf


def test_psnr_is_mean_of_per_image_values():
  x = np.zeros((2, 4, 4))
  y = np.stack([np.full((4, 4), 0.1), np.full((4, 4), 0.01)])
  assert psnr(x, y) == pytest.approx((20.0 + 40.0) / 2)


# ---------------------------------------------------------------- PCA


def _low_rank_data(rng, n, d, rank):
  return rng.normal(size=(n, rank)) @ rng.normal(size=(rank, d)) * 0.3 + rng.normal(size=d)


def test_pca_full_rank_reconstructs_exactly_and_zero_components_gives_variance():
  rng = np.random.default_rng(0)
  train = rng.random((200, 4, 4))
  test = rng.random((50, 4, 4))
  assert pca_reconstruction_mse(train, test, 16) == pytest.approx(0.0, abs=1e-20)
  expected = np.mean((test.reshape(50, -1) - train.reshape(200, -1).mean(0)) ** 2)
  assert pca_reconstruction_mse(train, test, 0) == pytest.approx(expected, rel=1e-12)


def test_pca_matches_direct_svd():
  rng = np.random.default_rng(1)
  train = _low_rank_data(rng, 300, 20, 8) + 0.01 * rng.normal(size=(300, 20))
  test = _low_rank_data(rng, 40, 20, 8)
  k = 5
  mean, components = fit_pca(train, k)
  assert components.shape == (k, 20)
  np.testing.assert_allclose(components @ components.T, np.eye(k), atol=1e-10)

  centred = train - train.mean(0)
  _, _, vt = np.linalg.svd(centred, full_matrices=False)
  basis = vt[:k]
  expected = (test - mean) @ basis.T @ basis + mean
  np.testing.assert_allclose(pca_reconstruct(test, mean, components), expected, atol=1e-9)
  assert pca_reconstruction_mse(train, test, k) == pytest.approx(np.mean((expected - test) ** 2))
  # Same directions up to sign.
  np.testing.assert_allclose(np.abs(components @ basis.T), np.eye(k), atol=1e-6)


def test_pca_error_decreases_with_k_and_validates_k():
  rng = np.random.default_rng(2)
  train, test = rng.random((100, 10)), rng.random((30, 10))
  errors = [pca_reconstruction_mse(train, test, k) for k in range(11)]
  assert all(a >= b - 1e-12 for a, b in zip(errors, errors[1:]))
  with pytest.raises(ValueError, match='num_components'):
    fit_pca(train, 11)


def test_pca_accepts_uint8_images_in_chunks(monkeypatch):
  from genjax.evaluation import pca

  monkeypatch.setattr(pca, '_CHUNK_ROWS', 7)  # covariance accumulated over many chunks
  rng = np.random.default_rng(3)
  train = rng.integers(0, 256, (50, 3, 3), dtype=np.uint8)
  mean, components = fit_pca(train, 4)
  flat = train.reshape(50, -1).astype(np.float64)
  cov = np.cov(flat, rowvar=False, bias=True)
  top = np.linalg.eigh(cov)[1][:, ::-1][:, :4]
  np.testing.assert_allclose(np.abs(components @ top), np.eye(4), atol=1e-8)


# ---------------------------------------------------------------- IWAE


def test_iwae_bound_is_stable():
  log_w = jnp.array([[-1000.0, -1000.0], [0.0, 0.0]])
  np.testing.assert_allclose(iwae_bound(log_w), [-1000.0, 0.0], atol=1e-4)
  np.testing.assert_allclose(iwae_bound(log_w.T, axis=0), [-1000.0, 0.0], atol=1e-4)


# A linear-Gaussian model: z ~ N(0, I_2), x | z ~ N(W z + b, s^2 I_5).
_W = np.array([[1.0, 0.5], [-0.3, 0.8], [0.2, -1.0], [0.7, 0.1], [-0.5, 0.4]])
_B = np.array([0.1, -0.2, 0.3, 0.0, 0.5])
_S = 0.5


def _gauss_logpdf(x, mean, var):
  return -0.5 * jnp.sum((x - mean) ** 2 / var + jnp.log(2 * jnp.pi * var), axis=-1)


def _make_log_weight_fn(exact_posterior):
  """log p(x, z) - log q(z | x); q is the exact posterior, or the prior (a poor proposal)."""
  post_cov = np.linalg.inv(np.eye(2) + _W.T @ _W / _S**2)
  chol = np.linalg.cholesky(post_cov)

  def log_weight_fn(params, x, rng, num_chunk):
    w, b = params['w'], params['b']
    eps = jax.random.normal(rng, (x.shape[0], num_chunk, 2))
    if exact_posterior:
      mean = ((x - b) @ w / _S**2) @ post_cov.T  # [B, 2]
      z = mean[:, None, :] + eps @ chol.T  # [B, k, 2]
      diff = jnp.linalg.solve(chol, (z - mean[:, None, :])[..., None])[..., 0]
      log_q = -0.5 * jnp.sum(diff**2, -1) - jnp.sum(jnp.log(jnp.diag(chol))) - jnp.log(2 * jnp.pi)
    else:
      z = eps
      log_q = _gauss_logpdf(z, 0.0, 1.0)
    log_prior = _gauss_logpdf(z, 0.0, 1.0)
    log_lik = _gauss_logpdf(x[:, None, :], z @ w.T + b, _S**2)
    return log_prior + log_lik - log_q

  return log_weight_fn


_EXACT = _make_log_weight_fn(exact_posterior=True)
_PRIOR = _make_log_weight_fn(exact_posterior=False)
_PARAMS = {'w': jnp.asarray(_W, jnp.float32), 'b': jnp.asarray(_B, jnp.float32)}


def _analytic_log_px(x):
  cov = _W @ _W.T + _S**2 * np.eye(5)
  diff = x - _B
  _, logdet = np.linalg.slogdet(cov)
  return -0.5 * (
    np.einsum('ni,ij,nj->n', diff, np.linalg.inv(cov), diff) + logdet + 5 * np.log(2 * np.pi)
  )


def _data(n, seed=0):
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(n, 2))
  return (z @ _W.T + _B + _S * rng.normal(size=(n, 5))).astype(np.float32)


def test_iwae_exact_posterior_gives_analytic_log_likelihood_with_padding():
  x = _data(7)  # 7 images in batches of 3: the last batch is padded
  est = estimate_log_likelihood(
    _EXACT, _PARAMS, x, jax.random.key(0), num_samples=50, batch_size=3, chunk_size=20
  )
  assert est.shape == (7,) and est.dtype == np.float64
  np.testing.assert_allclose(est, _analytic_log_px(x), atol=2e-3)


def test_iwae_chunked_equals_all_at_once():
  x = _data(5, seed=1)
  rng = jax.random.key(42)
  k, chunk, batch = 23, 5, 2  # 4 full chunks and a remainder of 3; 3 batches, last padded
  est = estimate_log_likelihood(
    _PRIOR, _PARAMS, x, rng, num_samples=k, batch_size=batch, chunk_size=chunk
  )
  prior = jax.jit(_PRIOR, static_argnums=3)  # eager op-by-op dispatch is slow
  expected = []
  for b, start in enumerate(range(0, 5, batch)):
    xb = x[start : start + batch]
    valid = len(xb)
    xb = np.concatenate([xb, np.repeat(xb[-1:], batch - valid, 0)])  # one shape: fewer compiles
    sizes = [chunk] * (k // chunk) + [k % chunk]
    log_w = jnp.concatenate(
      [prior(_PARAMS, xb, chunk_rng(rng, b, c), size) for c, size in enumerate(sizes)], axis=1
    )
    assert log_w.shape == (batch, k)
    expected.append(np.asarray(iwae_bound(log_w))[:valid])
  np.testing.assert_allclose(est, np.concatenate(expected), rtol=1e-6, atol=1e-5)
  # Chunks and batches draw different samples.
  w0 = prior(_PARAMS, jnp.asarray(x[:2]), chunk_rng(rng, 0, 0), chunk)
  w1 = prior(_PARAMS, jnp.asarray(x[:2]), chunk_rng(rng, 0, 1), chunk)
  w2 = prior(_PARAMS, jnp.asarray(x[:2]), chunk_rng(rng, 1, 0), chunk)
  assert not np.allclose(w0, w1) and not np.allclose(w0, w2)


def test_iwae_poor_proposal_is_a_lower_bound_that_tightens():
  x = _data(20, seed=2)
  exact = _analytic_log_px(x).mean()
  rng = jax.random.key(1)
  few = estimate_log_likelihood(_PRIOR, _PARAMS, x, rng, num_samples=1, batch_size=20).mean()
  many = estimate_log_likelihood(
    _PRIOR, _PARAMS, x, rng, num_samples=2000, batch_size=20, chunk_size=500
  ).mean()
  assert few < many < exact + 0.05
  assert exact - many < 0.5


def test_iwae_rejects_bad_log_weight_shape():
  bad = lambda params, x, rng, n: jnp.zeros((x.shape[0],))
  with pytest.raises(ValueError, match='batch, num_chunk'):
    estimate_log_likelihood(
      bad,
      None,
      np.zeros((4, 5), np.float32),
      jax.random.key(0),
      num_samples=4,
      batch_size=2,
      chunk_size=2,
    )


def test_iwae_traces_once_for_all_batches_and_chunks():
  traces = []

  def counting(params, x, rng, num_chunk):
    traces.append((x.shape, num_chunk))  # runs only while tracing
    return _PRIOR(params, x, rng, num_chunk)

  estimate_log_likelihood(
    counting, _PARAMS, _data(7), jax.random.key(0), num_samples=30, batch_size=3, chunk_size=10
  )
  # One trace of the jitted batch function: the scan body once, for 3 batches x 3 chunks.
  assert traces == [((3, 5), 10)]
