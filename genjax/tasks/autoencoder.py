"""The autoencoder family: compression, denoising and anomaly detection."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax import config as config_lib
from genjax.evaluation import auroc as auroc_lib
from genjax.evaluation import image_metrics, pca
from genjax.models import Autoencoder
from genjax.tasks import losses, noise, views as views_lib
from genjax.tasks.base import Task, View, float_images, per_example_keys, pictures, to_float


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  config_lib.add_fields(
    c,
    {
      # The Autoencoder module's arguments (genjax.models.Autoencoder), but image_shape.
      'model.arch': 'mlp',  # 'conv' | 'mlp'
      'model.latent_dim': 32,
      'model.widths': (32, 64),  # conv only: channels of the stride-2 convs
      'model.hidden': (512,),  # dense layers between pixels/conv features and the code
      'model.activation': 'relu',
      'data.noise': 'none',  # 'none' | 'gaussian' | 'mask': corruption of the input
      'data.noise_level': 0.0,  # Gaussian sigma, or masking probability
      'loss.reconstruction': 'bce',  # 'bce' (pixels as Bernoulli means) | 'mse'
    },
  )


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  del runs
  model = Autoencoder(image_shape=spec.image_shape(), **config.model)
  corruption = noise.Corruption(config.data.noise, config.data.noise_level)
  loss_kind = config.loss.reconstruction

  def corrupt(x, rng, index):
    keys = per_example_keys(jax.random.fold_in(rng, 1), index)
    return jax.vmap(corruption.apply)(keys, x)

  def reconstruct(params, x):
    return jax.nn.sigmoid(model.apply(params, x))

  def init(rng, batch):
    return model.init(rng, to_float(batch['image'][:1])), {}

  def loss(params, batch, rng):
    clean = to_float(batch['image'])
    logits = model.apply(params, corrupt(clean, rng, batch['index']))
    per_example = losses.reconstruction_loss(logits, clean, kind=loss_kind)
    mse = losses.mse_loss(jax.nn.sigmoid(logits), clean)
    return jnp.mean(per_example), {'mse': jnp.mean(mse)}

  def eval_metrics(params, batch, rng):
    clean = to_float(batch['image'])
    logits = model.apply(params, corrupt(clean, rng, batch['index']))
    mse = losses.mse_loss(jax.nn.sigmoid(logits), clean)
    return {
      'loss': losses.reconstruction_loss(logits, clean, kind=loss_kind),
      'mse': mse,
      'psnr': 10.0 * jnp.log10(1.0 / jnp.maximum(mse, 1e-10)),
    }

  batched_reconstruct = jax.jit(reconstruct)
  batched_corrupt = jax.jit(lambda x, rng: corrupt(x, rng, jnp.arange(x.shape[0])))

  def run_batched(fn, x, batch_size, *args):
    """fn over x in fixed-size batches (the last one padded) so it compiles once."""
    outs = []
    for start in range(0, len(x), batch_size):
      chunk = x[start : start + batch_size]
      pad = batch_size - len(chunk)
      padded = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
      outs.append(
        np.asarray(fn(padded, *[jax.random.fold_in(a, start) for a in args]))[: len(chunk)]
      )
    return np.concatenate(outs)

  def evaluate(params, data, rng, eval_config=config.eval):
    bs = eval_config.batch_size
    test = float_images(data.test)
    recon = run_batched(lambda x: batched_reconstruct(params, x), test, bs)
    results = {
      'mse': image_metrics.mse(recon, test),
      'psnr': image_metrics.psnr(recon, test),
      'pca_mse': pca.pca_reconstruction_mse(
        float_images(data.train), test, config.model.latent_dim
      ),
      'latent_dim': config.model.latent_dim,
      'num_examples': int(len(test)),
    }
    if corruption.kind != 'none':
      noisy = run_batched(batched_corrupt, test, bs, rng)
      denoised = run_batched(lambda x: batched_reconstruct(params, x), noisy, bs)
      results['noisy_psnr'] = image_metrics.psnr(np.clip(noisy, 0, 1), test)
      results['denoised_psnr'] = image_metrics.psnr(denoised, test)
    if data.anomaly:
      # Anomaly score: how badly the model, trained on normal data only, reconstructs.
      normal, odd = float_images(data.normal_test), float_images(data.anomaly)
      scores = [
        image_metrics.per_image_mse(run_batched(lambda x: batched_reconstruct(params, x), a, bs), a)
        for a in (normal, odd)
      ]
      labels = np.concatenate([np.zeros(len(normal)), np.ones(len(odd))])
      results['anomaly_auroc'] = auroc_lib.auroc(labels, np.concatenate(scores))
    return results

  def view_reconstruct(params, arrays, rng, num):
    x = float_images(arrays, num)
    return views_lib.interleave(x, np.asarray(batched_reconstruct(params, x)))

  def view_denoise(params, arrays, rng, num):
    """Rows of noisy inputs, then their denoised outputs, then the clean images."""
    x = float_images(arrays, num)
    noisy = np.asarray(batched_corrupt(x, rng))
    out = np.asarray(batched_reconstruct(params, noisy))
    return views_lib.interleave(np.clip(noisy, 0, 1), out, x)

  views = {
    'reconstruct': View(pictures(view_reconstruct), needs_data=True),
    'denoise': View(pictures(view_denoise), needs_data=True),
  }
  default = 'denoise' if corruption.kind != 'none' else 'reconstruct'
  return Task(
    name='autoencoder',
    model=model,
    init=init,
    loss=loss,
    eval_metrics=eval_metrics,
    evaluate=evaluate,
    views=views,
    default_view=default,
  )
