"""Image-quality report of a generator, measured with our own trained classifier.

FID uses the classifier's penultimate features, the Inception Score its softmax, and
precision/recall (Kynkäänniemi et al. 2019) its feature space. Real-data references are
reported beside the model's (FID of train vs test, IS of the test set) so the numbers
can be read: a perfect generator scores like the test set.
"""

from __future__ import annotations

import functools
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from genjax.evaluation import gan_metrics
from genjax.tasks.base import float_images


@functools.lru_cache(maxsize=4)  # periodic evaluation during training reuses it
def load_classifier(runs, workdir: str):
  """(model, variables) of a trained `classifier` experiment in `workdir`, loaded with
  `runs` (genjax.api.RUNS), or a message saying how to train one."""
  if not workdir or runs is None or not os.path.exists(os.path.join(workdir, 'config.json')):
    # The experiments name their classifier's workdir after its config file
    # (runs/fruits_classifier <- experiments/fruits_classifier.py), run from the repo root.
    name = os.path.basename(os.path.normpath(workdir)) if workdir else ''
    known = name and os.path.exists(os.path.join('experiments', f'{name}.py'))
    experiment = name if known else 'mnist_classifier'
    raise FileNotFoundError(
      f'eval.classifier_workdir={workdir!r} holds no trained classifier. Train it first:\n'
      f'  python -m launch.main --config=experiments/{experiment}.py '
      f'--workdir={workdir or "runs/mnist_classifier"}\n'
      '(the classifier experiment of the same dataset), or point '
      '--config.eval.classifier_workdir at one.'
    )
  trained = runs.load(workdir)
  return trained.model, trained.variables


def evaluate(
  sample_fn: Callable,
  sample_args,
  classifier,
  data,
  rng: jax.Array,
  eval_config,
  latent_dim: int,
  num_classes: int,
  num_samples: int | None = None,
  labels_are_classes: bool = True,
  label_prior: np.ndarray | None = None,
) -> dict:
  """`sample_fn(sample_args, z, labels) -> images [B, H, W, C] in [0, 1]` (labels None if
  unconditional). `sample_args` holds the generator's weights (any pytree): they are
  arguments of the compiled sampler, not constants baked into it, so evaluating the next
  checkpoint with the same `sample_fn` object compiles nothing again.

  With `num_classes`, labels 0..num_classes-1 are passed in turn; `labels_are_classes`
  False (InfoGAN codes, clusters) skips `label_accuracy`, as their meaning is not a
  class's. `label_prior` [num_classes] (shares summing to 1) draws each label that share
  of the time instead (clusters: as often as the training images fall in each).

  `num_samples` (default `eval_config.num_samples`) generated images are compared with
  as many test (and train) images.
  """
  classifier, c_params = classifier
  n, bs = num_samples or eval_config.num_samples, eval_config.batch_size

  z = np.asarray(jax.random.normal(rng, (n, latent_dim)), np.float32)
  if label_prior is not None:
    labels = _allocate(label_prior, n)
  else:
    labels = np.arange(n) % num_classes if num_classes else np.zeros(n)
  labels = labels.astype(np.float32)
  generate = _generator(sample_fn, latent_dim, bool(num_classes))
  z_and_labels = np.concatenate([z, labels[:, None]], 1)
  fakes = gan_metrics.batched_apply(generate, z_and_labels, bs, args=(sample_args,))

  features, probs = _classifier_fns(classifier)
  test, train = float_images(data.test, n), float_images(data.train, n)
  on = lambda fn, images: gan_metrics.batched_apply(fn, images, bs, args=(c_params,))
  f_fake, f_test, f_train = on(features, fakes), on(features, test), on(features, train)
  p_fake, p_test = on(probs, fakes), on(probs, test)
  precision, recall = gan_metrics.precision_recall(f_test, f_fake)
  is_fake, is_fake_std = gan_metrics.inception_score(p_fake)
  is_test, _ = gan_metrics.inception_score(p_test)
  shares = gan_metrics.class_coverage(np.argmax(p_fake, -1), p_fake.shape[-1])
  results = {
    'fid': gan_metrics.fid(f_fake, f_test),
    'fid_train_vs_test': gan_metrics.fid(f_train, f_test),
    'inception_score': is_fake,
    'inception_score_std': is_fake_std,
    'inception_score_test': is_test,
    'precision': precision,
    'recall': recall,
    'class_shares': [float(s) for s in shares],
    'num_samples': int(n),
  }
  results.update(gan_metrics.coverage_summary(shares))
  if num_classes and labels_are_classes:  # a conditional model draws the class asked for
    results['label_accuracy'] = float(np.mean(np.argmax(p_fake, -1) == labels.astype(int)))
  return results


# Cached, so that periodic evaluation during training reuses one compiled function per
# sampler and classifier (gan_metrics.batched_apply keeps one compile per function object).
@functools.lru_cache(maxsize=8)
def _generator(sample_fn: Callable, latent_dim: int, conditional: bool) -> Callable:
  """`generate(sample_args, [B, latent_dim + 1] noise and labels) -> images`."""

  def generate(sample_args, z_and_labels):
    z, labels = z_and_labels[..., :latent_dim], z_and_labels[..., latent_dim]
    return sample_fn(sample_args, z, labels.astype(jnp.int32) if conditional else None)

  return generate


@functools.lru_cache(maxsize=4)
def _classifier_fns(classifier) -> tuple[Callable, Callable]:
  """`(features(params, x), probs(params, x))` of a classifier model."""
  features = lambda params, x: classifier.apply(params, x, method=classifier.features)
  probs = lambda params, x: jax.nn.softmax(classifier.apply(params, x))
  return features, probs


def _allocate(shares: np.ndarray, n: int) -> np.ndarray:
  """[n] labels, label i `shares[i] * n` times rounded so they sum to n (largest
  remainders first): the exact mix, free of sampling noise. Shuffled (fixed seed): the
  Inception Score's splits are runs of consecutive samples, and each must see the mix."""
  exact = np.asarray(shares, np.float64) * n
  counts = np.floor(exact).astype(int)
  counts[np.argsort(counts - exact)[: n - counts.sum()]] += 1
  return np.random.default_rng(0).permutation(np.repeat(np.arange(len(shares)), counts))
