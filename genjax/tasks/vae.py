"""The VAE family: ELBO training, IWAE likelihood, samples, interpolation, anomaly scores,
and the GANs' classifier metrics of its samples (so one table compares the families)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from genjax import config as config_lib
from genjax.evaluation import auroc as auroc_lib
from genjax.evaluation import iwae
from genjax.models import VAE
from genjax.tasks import gan_evaluation, losses, views as views_lib
from genjax.tasks.base import Task, View, float_images, per_example_keys, pictures, to_float


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  config_lib.add_fields(
    c,
    {
      # The VAE module's arguments (genjax.models.VAE), but image_shape (from the data).
      'model.arch': 'conv',  # 'conv' | 'mlp'
      'model.latent_dim': 32,
      'model.widths': (32, 64),  # conv only: channels of the stride-2 convs
      'model.hidden': (512,),  # dense layers between pixels/conv features and z
      'model.likelihood': 'bernoulli',  # 'bernoulli' | 'gaussian' | 'discretized_gaussian'
      'model.activation': 'relu',
      'loss.kl_weight': 1.0,  # beta of a beta-VAE; 1 is the ELBO
      'eval.iwae_samples': 1000,  # importance samples per test image for the NLL
      'eval.iwae_examples': 0,  # test images scored by IWAE; 0 = all
      'eval.iwae_batch_size': 100,
      'eval.anomaly_samples': 16,  # importance samples in the anomaly score
      # A trained classifier run of the same dataset: launch.evaluate then also scores
      # eval.num_samples prior samples (decoder means) by FID/IS/precision/recall, as the
      # GANs and diffusion models are. Skipped, with a warning, while it is not trained.
      'eval.classifier_workdir': '',
      'eval.num_samples': 10_000,
    },
  )


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  model = VAE(image_shape=spec.image_shape(), **config.model)
  binarize = config.data.binarize
  kl_weight = config.loss.kl_weight
  likelihood = config.model.likelihood

  def prepare(batch, rng):
    """Bytes -> [0, 1] floats; dynamically binarized (fresh bits every step) if asked."""
    x = to_float(batch['image'])
    if not binarize:
      return x
    keys = per_example_keys(jax.random.fold_in(rng, 1), batch['index'])
    return jax.vmap(lambda k, xi: jax.random.bernoulli(k, xi).astype(jnp.float32))(keys, x)

  def elbo_terms(params, batch, rng):
    """Per-example log p(x|z) and KL, each example with its own key, so the noise does
    not depend on how the batch is split over devices."""
    x = prepare(batch, rng)
    keys = per_example_keys(jax.random.fold_in(rng, 2), batch['index'])

    def one(xi, key):
      out = model.apply(params, xi[None], rngs={'sample': key})
      log_lik = losses.decoder_log_likelihood(out['out'], xi[None], likelihood)
      return log_lik[0], losses.gaussian_kl(out['mean'], out['logvar'])[0]

    return jax.vmap(one)(x, keys)

  def init(rng, batch):
    x = to_float(batch['image'][:1])
    return model.init({'params': rng, 'sample': rng}, x), {}

  def loss(params, batch, rng):
    log_lik, kl = elbo_terms(params, batch, rng)
    objective = jnp.mean(log_lik - kl_weight * kl)
    return -objective, {
      'elbo': jnp.mean(log_lik - kl),
      'kl': jnp.mean(kl),
      'reconstruction': -jnp.mean(log_lik),
    }

  def eval_metrics(params, batch, rng):
    log_lik, kl = elbo_terms(params, batch, rng)
    return {'loss': kl - log_lik, 'kl': kl, 'reconstruction': -log_lik}

  def log_weights(params, x, rng, k):
    """log p(x, z_j) - log q(z_j | x) for k posterior samples per image: [B, k]."""
    mean, logvar = model.apply(params, x, method=model.encode)
    eps = jax.random.normal(rng, (x.shape[0], k, mean.shape[-1]))
    z = mean[:, None] + jnp.exp(0.5 * logvar)[:, None] * eps
    flat = z.reshape(-1, z.shape[-1])
    out = model.apply(params, flat, method=model.decode)
    x_rep = jnp.repeat(x, k, axis=0)
    log_lik = losses.decoder_log_likelihood(out, x_rep, likelihood).reshape(-1, k)
    log_prior = losses.standard_normal_log_prob(z)
    log_q = losses.gaussian_log_prob(z, mean[:, None], logvar[:, None])
    return log_lik + log_prior - log_q

  def evaluate(params, data, rng, eval_config=config.eval):
    rng_elbo, rng_nll, rng_anomaly = jax.random.split(rng, 3)
    x = float_images(data.test, eval_config.iwae_examples or None)
    k = eval_config.iwae_samples
    log_px = iwae.estimate_log_likelihood(
      log_weights, params, x, rng_nll, num_samples=k, batch_size=eval_config.iwae_batch_size
    )
    elbo = iwae.estimate_log_likelihood(
      log_weights, params, x, rng_elbo, num_samples=1, batch_size=eval_config.batch_size
    )
    shape = x.shape[1:]
    results = {
      'nll': float(-np.mean(log_px)),
      'elbo': float(np.mean(elbo)),
      'iwae_samples': k,
      'num_examples': int(len(x)),
      'bits_per_dim': float(-np.mean(log_px) / (np.prod(shape) * np.log(2))),
    }
    if data.anomaly:
      # Anomaly score: the negative ELBO (an upper bound on -log p(x)); low likelihood
      # under a model of normal data means anomalous.
      normal = float_images(data.normal_test)
      odd = float_images(data.anomaly)
      k_score = eval_config.anomaly_samples
      scores = [
        -iwae.estimate_log_likelihood(
          log_weights, params, a, r, num_samples=k_score, batch_size=eval_config.batch_size
        )
        for a, r in zip((normal, odd), jax.random.split(rng_anomaly))
      ]
      labels = np.concatenate([np.zeros(len(normal)), np.ones(len(odd))])
      results['anomaly_auroc'] = auroc_lib.auroc(labels, np.concatenate(scores))
    results.update(image_quality(params, data, jax.random.fold_in(rng, 3), eval_config))
    return results

  def image_quality(params, data, rng, eval_config):
    """The classifier metrics of prior samples, or {} (with the reason) without one."""
    if not eval_config.classifier_workdir:
      return {}
    try:
      classifier = gan_evaluation.load_classifier(runs, eval_config.classifier_workdir)
    except FileNotFoundError as e:
      logging.warning('No FID/IS/precision/recall of samples: %s', e)
      return {}
    return gan_evaluation.evaluate(
      # The decoder's mean, as the sample grids show; a discretized Gaussian's can stray
      # past [0, 1], the classifier's input range.
      clipped_decode_mean,
      params,
      classifier,
      data,
      rng,
      eval_config,
      config.model.latent_dim,
      num_classes=0,
    )

  def decode_mean(params, z):
    return model.apply(params, z, method=model.generate)

  def clipped_decode_mean(params, z, labels):
    del labels  # unconditional
    return jnp.clip(decode_mean(params, z), 0.0, 1.0)

  def view_sample(params, arrays, rng, num):
    z = jax.random.normal(rng, (num, config.model.latent_dim))
    return views_lib.square(np.asarray(decode_mean(params, z)))

  def view_reconstruct(params, arrays, rng, num):
    x = float_images(arrays, num)
    mean, _ = model.apply(params, x, method=model.encode)
    recon = np.asarray(decode_mean(params, mean))
    return views_lib.interleave(x, recon)

  def view_interpolate(params, arrays, rng, num):
    """Rows walk the latent line between pairs of test images (posterior means)."""
    rows, cols = max(num // 10, 1), 10
    x = float_images(arrays, 2 * rows)
    mean, _ = model.apply(params, x, method=model.encode)
    start, end = mean[0::2], mean[1::2]
    t = jnp.linspace(0.0, 1.0, cols - 2)[None, :, None]
    z = (1 - t) * start[:, None] + t * end[:, None]
    images = np.asarray(decode_mean(params, z.reshape(-1, z.shape[-1])))
    images = images.reshape(rows, cols - 2, *images.shape[1:])
    return np.concatenate([x[0::2, None], images, x[1::2, None]], axis=1)

  views = {
    'sample': View(pictures(view_sample)),
    'reconstruct': View(pictures(view_reconstruct), needs_data=True),
    'interpolate': View(pictures(view_interpolate), needs_data=True),
  }
  return Task(
    name='vae',
    model=model,
    init=init,
    loss=loss,
    eval_metrics=eval_metrics,
    evaluate=evaluate,
    views=views,
    default_view='sample',
  )
