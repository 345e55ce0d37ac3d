"""Pure GAN objectives on discriminator logits (jax.numpy only): losses, penalties, EMA.

Conventions: logits are ``[B]`` (one per example, larger means "more real"); every loss
and penalty is a scalar batch mean, to be minimised. ``kind`` picks the objective:
  'non_saturating': the standard GAN (Goodfellow et al. 2014) discriminator
    ``softplus(-D(x)) + softplus(D(G(z)))`` (cross-entropy with labels 1 / 0) and the
    non-saturating generator loss ``softplus(-D(G(z)))`` = -log sigmoid(D(G(z))).
  'hinge': ``relu(1 - D(x)) + relu(1 + D(G(z)))`` and ``-D(G(z))`` (Lim & Ye 2017;
    SNGAN, BigGAN).
  'wasserstein': the critic's ``D(G(z)) - D(x)`` and ``-D(G(z))`` (Arjovsky et al.
    2017); pair it with ``gradient_penalty`` (WGAN-GP).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.nn import relu, softplus

Array = jnp.ndarray
DiscriminatorFn = Callable[[Array], Array]

KINDS = ('non_saturating', 'hinge', 'wasserstein')


def _check_kind(kind: str) -> None:
  if kind not in KINDS:
    raise ValueError(f'unknown GAN loss kind {kind!r}; expected one of {KINDS}')


def discriminator_loss(
  real_logits: Array, fake_logits: Array, kind: str = 'non_saturating'
) -> Array:
  """The discriminator's (critic's) loss, a scalar: mean over real plus mean over fake."""
  _check_kind(kind)
  if kind == 'non_saturating':
    return jnp.mean(softplus(-real_logits)) + jnp.mean(softplus(fake_logits))
  if kind == 'hinge':
    return jnp.mean(relu(1.0 - real_logits)) + jnp.mean(relu(1.0 + fake_logits))
  return jnp.mean(fake_logits) - jnp.mean(real_logits)


def generator_loss(fake_logits: Array, kind: str = 'non_saturating') -> Array:
  """The generator's loss on the discriminator's logits for generated images, a scalar."""
  _check_kind(kind)
  if kind == 'non_saturating':
    return jnp.mean(softplus(-fake_logits))
  return -jnp.mean(fake_logits)


def _per_example_grad_sq_norm(d_fn: DiscriminatorFn, x: Array) -> Array:
  """``||d D(x_i) / d x_i||^2`` for each example, ``[B]``.

  One backward pass of ``sum_i D(x_i)`` gives every per-example gradient, since D's
  logit for example i depends on x_i only (no batch norm in the discriminator).
  """
  grads = jax.grad(lambda x: jnp.sum(d_fn(x)))(x)
  return jnp.sum(jnp.square(grads.reshape((x.shape[0], -1))), axis=-1)


def gradient_penalty(d_fn: DiscriminatorFn, real: Array, fake: Array, rng: Array) -> Array:
  """WGAN-GP penalty (Gulrajani et al. 2017): ``mean_i (||grad D(x_hat_i)||_2 - 1)^2``.

  ``x_hat_i = t_i real_i + (1 - t_i) fake_i`` with one ``t_i ~ U[0, 1]`` per example.
  ``d_fn: [B, ...] -> [B]`` (bind params and labels with a closure). Callers usually
  multiply by lambda = 10. Gradients flow to D's parameters (and to ``fake``: stop
  them with ``jax.lax.stop_gradient`` if the generator must not see the penalty).
  """
  t = jax.random.uniform(rng, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
  interpolates = t * real + (1.0 - t) * fake
  sq_norm = _per_example_grad_sq_norm(d_fn, interpolates)
  # sqrt(0) has an infinite derivative; the epsilon keeps the penalty's gradient finite.
  norm = jnp.sqrt(sq_norm + 1e-12)
  return jnp.mean(jnp.square(norm - 1.0))


def r1_penalty(d_fn: DiscriminatorFn, real: Array) -> Array:
  """R1 penalty (Mescheder et al. 2018): ``mean_i ||grad_x D(real_i)||^2``.

  Callers multiply by gamma / 2. ``d_fn: [B, ...] -> [B]``.
  """
  return jnp.mean(_per_example_grad_sq_norm(d_fn, real))


def discriminator_accuracy(
  real_logits: Array, fake_logits: Array, kind: str = 'non_saturating'
) -> tuple[Array, Array]:
  """``(acc_real, acc_fake)``: fractions of real logits > 0 and of fake logits < 0.

  The threshold 0 is the decision boundary for all three kinds (sigmoid(0) = 1/2, the
  hinge's midpoint, and the sign of a critic that is trained to separate around 0 --
  for 'wasserstein' only the gap is meaningful, so read it as a rough indicator).
  """
  _check_kind(kind)
  acc_real = jnp.mean((real_logits > 0).astype(jnp.float32))
  acc_fake = jnp.mean((fake_logits < 0).astype(jnp.float32))
  return acc_real, acc_fake


def info_loss(code_logits: Array, codes: Array) -> Array:
  """InfoGAN's categorical term: cross-entropy of Q's code logits ``[B, K]`` against the
  codes ``[B]`` that made the fakes, a scalar.

  log K minus it lower-bounds the mutual information between code and image (uniform
  codes); G and Q both minimise it, so that each code should mean a tellable kind of image.
  """
  log_probs = jax.nn.log_softmax(code_logits.astype(jnp.float32))
  return -jnp.mean(jnp.take_along_axis(log_probs, codes[:, None], axis=-1))


def ema_update(ema_params: Any, params: Any, decay: float) -> Any:
  """``decay * ema + (1 - decay) * params``, leaf by leaf (decay=0 copies params).

  The usual generator EMA for evaluation and samples (decay ~0.999).
  """
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)


class DivergenceMonitor:
  """Warns when the discriminator has won outright for `warn_steps` steps or more.

  Called at each log step with that interval's mean train metrics. "Won" means the
  discriminator loss is pinned near 0 (non-saturating, hinge), or, for a Wasserstein
  critic whose loss has no floor, that it separates every real and fake example. Then
  the generator's gradient has vanished and training has diverged; the loss curves
  alone look calm. NaN is the loop's business (it stops the run).
  """

  def __init__(self, kind: str, warn_steps: int = 1000, threshold: float = 0.01):
    _check_kind(kind)
    self.kind, self.warn_steps, self.threshold = kind, warn_steps, threshold
    self.pinned_since: int | None = None  # first log step of the current pinned stretch
    self.last_step = 0
    self.warned = False

  def _pinned(self, means: dict) -> bool:
    if self.kind == 'wasserstein':
      return min(means['d_accuracy_real'], means['d_accuracy_fake']) >= 1.0 - self.threshold
    return means['d_loss'] < self.threshold

  def __call__(self, step: int, means: dict) -> str | None:
    previous, self.last_step = self.last_step, step
    if not self._pinned(means):
      self.pinned_since, self.warned = None, False
      return None
    if self.pinned_since is None:
      self.pinned_since = previous  # the stretch began after the last healthy log
    if self.warned or step - self.pinned_since < self.warn_steps:
      return None
    self.warned = True  # once per stretch
    return (
      f'the discriminator has won outright since step {self.pinned_since} '
      f'(d_loss={means["d_loss"]:.3g}, accuracy real {means["d_accuracy_real"]:.3f} / '
      f'fake {means["d_accuracy_fake"]:.3f}): the generator gets no gradient and training '
      'has diverged. Look at the samples/ grids; try a lower d_optim.learning_rate, '
      "loss.r1_gamma > 0, or loss.kind='hinge'."
    )
