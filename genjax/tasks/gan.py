"""The GAN family: one pure step that updates discriminator then generator, EMA weights.

State layout: `params = {'generator', 'discriminator'}`, `opt_state` the same keys (two
optax optimizers: `config.optim` for G, `config.d_optim` for D), `extra = {'batch_stats':
generator batch-norm statistics, 'ema': EMA of the params}` (train.ema_decay, 0.999 by
default, genjax.step.train_step). Samples and evaluation use the EMA generator (`export`).

InfoGAN (`model.num_codes = K > 0`, Chen et al. 2016): the generator's latent is
`latent_dim` Gaussian noise followed by a one-hot categorical code of K values, drawn
uniformly; the discriminator's Q head learns to tell the code from the image and the
generator is rewarded (`loss.info_weight`) for making it tellable. No labels are used;
the paper's codes came to mean MNIST digits, which would keep samples off the ground
between classes, but in our 6k-step probe of mnist_dcgan they did not (README).
`--class=k` draws code k.

Self-conditioning (`data.clusters = K > 0`, no labels either): G and D are conditioned,
as a class-conditional model's are, on the k-means cluster of each training image
(`genjax.data.clusters`, saved in the workdir); samples draw each cluster as often as
the training images fall in it. `--class=k` draws cluster k.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from absl import logging
import ml_collections
import numpy as np
import optax

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.data import clusters
from genjax.models.gan import Discriminator, Generator
from genjax.step import optim, parallel
from genjax.step import state as state_lib
from genjax.tasks import gan_evaluation, gan_losses, views as views_lib
from genjax.tasks.base import Task, View, per_example_keys, pictures, to_float


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  config_lib.add_fields(
    c,
    {
      # genjax.models.Generator's arguments, but image_shape (from the data).
      'model.generator.latent_dim': 64,
      'model.generator.widths': (128, 64),  # channels after each 2x upsampling
      'model.generator.num_classes': 0,  # > 0: class-conditional on the labels
      'model.generator.norm': 'batch',  # 'batch' | 'layer' | 'none'
      # genjax.models.Discriminator's arguments, but image_shape and num_codes.
      'model.discriminator.widths': (64, 128),  # stride-2 convs
      'model.discriminator.num_classes': 0,
      'model.discriminator.conditioning': 'projection',  # how labels enter D
      'model.num_codes': 0,  # > 0: InfoGAN categorical code of that many values (no labels)
      'loss.kind': 'non_saturating',  # 'non_saturating' | 'hinge' | 'wasserstein'
      'loss.gp_weight': 0.0,  # WGAN-GP gradient penalty weight (10 with 'wasserstein')
      'loss.r1_gamma': 0.0,  # R1 penalty on real data
      'loss.d_steps': 1,  # discriminator updates per generator update
      'loss.info_weight': 1.0,  # InfoGAN: weight of the code-recovery term (with num_codes)
      'loss.pinned_warn_steps': 1000,  # warn when D has won outright this long (divergence)
      'eval.classifier_workdir': '',  # a trained classifier run: FID/IS/precision/recall
      'eval.num_samples': 10_000,  # generated images scored by launch.evaluate
    },
  )
  # The discriminator's optimizer, the generator's (config.optim) unless set.
  if 'd_optim' not in c:
    c.d_optim = c.optim.copy_and_resolve_references()
  c.train.ema_decay = 0.999  # samples and evaluation use the generator's EMA weights


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  image_shape = spec.image_shape()
  g_config, d_config = config.model.generator, config.model.discriminator
  num_codes = config.model.num_codes
  num_clusters = config.data.clusters
  labelled = g_config.num_classes > 0
  if num_codes < 0 or (num_codes and (labelled or num_clusters)):
    raise ConfigError(
      f'model.num_codes={num_codes}: InfoGAN codes need an unconditional '
      'model (model.generator.num_classes=0, data.clusters=0) and '
      'num_codes >= 0.'
    )
  if num_clusters and (labelled or d_config.num_classes):
    raise ConfigError(
      f'data.clusters={num_clusters} conditions the model on its k-means '
      'clusters: leave model.generator.num_classes and '
      'model.discriminator.num_classes at 0 (they are set to the clusters).'
    )
  # Conditions: class labels, or (self-conditioning) the clusters of the training images.
  num_conditions = num_clusters or g_config.num_classes
  conditional = num_conditions > 0
  label_key = 'cluster' if num_clusters else 'label'
  noise_dim = g_config.latent_dim
  latent_dim = noise_dim + num_codes  # what the generator module takes
  g_kwargs = dict(
    g_config, latent_dim=latent_dim, image_shape=tuple(image_shape), num_classes=num_conditions
  )
  generator = Generator(**g_kwargs)
  # Under 'pmap' each device sees a slice of the batch; batch norm then averages its
  # statistics over the 'data' axis, so the step equals the one-device step.
  generator_per_device = Generator(batch_stats_axis='data', **g_kwargs)
  d_kwargs = dict(d_config, num_classes=num_conditions) if num_clusters else d_config
  discriminator = Discriminator(image_shape=tuple(image_shape), num_codes=num_codes, **d_kwargs)
  loss_config = config.loss
  info_weight = loss_config.info_weight

  def with_codes(noise, codes):
    """The generator's latent: noise, then the codes one-hot (or given as weights [B, K])."""
    if not num_codes:
      return noise
    onehot = jax.nn.one_hot(codes, num_codes) if codes.ndim == 1 else codes
    return jnp.concatenate([noise, onehot.astype(noise.dtype)], axis=-1)

  def latents(rng, index):
    """(latents, codes) for a batch, each example's drawn from its own key (codes None
    without InfoGAN codes)."""
    keys = per_example_keys(rng, index)
    noise = jax.vmap(lambda k: jax.random.normal(k, (noise_dim,)))(keys)
    if not num_codes:
      return noise, None
    codes = jax.vmap(lambda k: jax.random.randint(jax.random.fold_in(k, 1), (), 0, num_codes))(keys)
    return with_codes(noise, codes), codes

  def labels_of(batch):
    return batch[label_key] if conditional else None

  def init(rng, batch):
    g_rng, d_rng = jax.random.split(rng)
    x = to_float(batch['image'][:1])
    labels = batch[label_key][:1] if conditional else None
    g_vars = generator.init(g_rng, jnp.zeros((1, latent_dim)), labels, train=False)
    d_vars = discriminator.init(d_rng, x, labels)
    params = {'generator': g_vars['params'], 'discriminator': d_vars['params']}
    extra = {'batch_stats': g_vars.get('batch_stats', {})}
    return params, extra

  def make_optimizer(cfg):
    return {
      'generator': optim.make_optimizer(cfg.optim, cfg.train.steps),
      'discriminator': optim.make_optimizer(cfg.d_optim, cfg.train.steps),
    }

  def make_step(tx):

    def step(state: state_lib.TrainState, batch, *, axis_name):
      gen = generator_per_device if axis_name else generator
      rng = state_lib.step_key(state)
      real, labels = to_float(batch['image']), labels_of(batch)
      params, opt_state, stats = state.params, dict(state.opt_state), state.extra['batch_stats']

      def generate(g_params, stats, z):
        fake, updated = gen.apply(
          {'params': g_params, 'batch_stats': stats}, z, labels, train=True, mutable=['batch_stats']
        )
        return fake, updated.get('batch_stats', {})

      def d_with_codes(d_params, x, codes):
        """(logits, info loss, code accuracy); the last two 0 without a Q head."""
        if not num_codes:
          return discriminator.apply({'params': d_params}, x, labels), 0.0, 0.0
        logits, code_logits = discriminator.apply(
          {'params': d_params}, x, labels, return_code_logits=True
        )
        accuracy = jnp.mean((jnp.argmax(code_logits, -1) == codes).astype(jnp.float32))
        return logits, gan_losses.info_loss(code_logits, codes), accuracy

      def d_loss_fn(d_params, fake, codes, rng):
        d = lambda x: discriminator.apply({'params': d_params}, x, labels)
        real_logits = d(real)
        fake_logits, info, _ = d_with_codes(d_params, fake, codes)
        loss = gan_losses.discriminator_loss(real_logits, fake_logits, loss_config.kind)
        loss += info_weight * info
        if loss_config.gp_weight:
          loss += loss_config.gp_weight * gan_losses.gradient_penalty(d, real, fake, rng)
        if loss_config.r1_gamma:
          loss += 0.5 * loss_config.r1_gamma * gan_losses.r1_penalty(d, real)
        return loss, (real_logits, fake_logits)

      def update(name, grads):
        grads = parallel.mean_over_devices(grads, axis_name)
        updates, opt_state[name] = tx[name].update(grads, opt_state[name], params[name])
        params[name] = optax.apply_updates(params[name], updates)
        return optax.tree.norm(grads)

      # The last discriminator step's fakes also train the generator (as PyTorch's DCGAN
      # does): one generator forward per step, its backward taken through `jax.vjp`.
      for i in range(loss_config.d_steps):  # unrolled: d_steps is static config
        d_rng = jax.random.fold_in(rng, i)
        z, codes = latents(jax.random.fold_in(d_rng, 0), batch['index'])
        fake, g_vjp, new_stats = jax.vjp(
          lambda g: generate(g, stats, z), params['generator'], has_aux=True
        )
        (d_loss, (real_logits, fake_logits)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
          params['discriminator'], jax.lax.stop_gradient(fake), codes, jax.random.fold_in(d_rng, 1)
        )
        d_grad_norm = update('discriminator', d_grads)

      def g_loss_of_fake(fake):  # against the discriminator just updated
        logits, info, code_accuracy = d_with_codes(params['discriminator'], fake, codes)
        loss = gan_losses.generator_loss(logits, loss_config.kind)
        return loss + info_weight * info, (loss, info, code_accuracy)

      (_, (g_loss, info, code_accuracy)), d_fake = jax.value_and_grad(g_loss_of_fake, has_aux=True)(
        fake
      )
      (g_grads,) = g_vjp(d_fake)
      g_grad_norm = update('generator', g_grads)
      acc_real, acc_fake = gan_losses.discriminator_accuracy(
        real_logits, fake_logits, loss_config.kind
      )
      metrics = {
        'd_loss': d_loss,
        'g_loss': g_loss,
        'd_accuracy_real': acc_real,
        'd_accuracy_fake': acc_fake,
      }
      if num_codes:  # g_loss is the adversarial part; d_loss includes the info term
        metrics.update(info_loss=info, code_accuracy=code_accuracy)
      metrics = parallel.mean_over_devices(metrics, axis_name)
      metrics.update(
        loss=metrics['d_loss'] + metrics['g_loss'], d_grad_norm=d_grad_norm, g_grad_norm=g_grad_norm
      )
      new_state = state.replace(
        step=state.step + 1,
        params=params,
        opt_state=opt_state,
        extra=dict(state.extra, batch_stats=new_stats),
      )
      return new_state, metrics

    return step

  def export(params, state):
    """The generator (its EMA when train.ema_decay > 0, the default), as ordinary flax
    variables for `Generator.apply`."""
    variables = {'params': params['generator']}
    if state.extra['batch_stats']:
      variables['batch_stats'] = state.extra['batch_stats']
    return variables

  def sample(variables, z, labels=None):
    return generator.apply(variables, z, labels, train=False)

  sample_jit = jax.jit(sample)

  def view_labels(num, classes=None):
    """Labels (conditional), clusters (self-conditioned) or codes (InfoGAN) for `num`
    pictures: the requested ones in turn, else all in turn; None for a plain
    unconditional model."""
    count = num_conditions or num_codes
    if classes and not count:
      raise ConfigError(
        '--class needs a class-conditional model (model.generator.num_classes'
        ' > 0, as in experiments/mnist_cdcgan.py), clusters (data.clusters > 0)'
        ' or InfoGAN codes (model.num_codes > 0).'
      )
    if not count:
      return None
    bad = [c for c in classes or () if not 0 <= c < count]
    if bad:
      kind = 'clusters' if num_clusters else 'classes' if conditional else 'codes'
      raise ConfigError(f'--class {bad}: the model has {kind} 0..{count - 1}.')
    pool = np.asarray(classes) if classes else np.arange(count)
    return jnp.asarray(np.resize(pool, num))

  def images_of(variables, noise, labels):
    """Images from noise [N, noise_dim] and labels/codes [N] (codes may be weights [N, K])."""
    if num_codes:
      return sample_jit(variables, with_codes(noise, labels))
    return sample_jit(variables, noise, labels)

  def draw(variables, noise, labels):
    return np.asarray(images_of(variables, noise, labels))

  def view_sample(variables, arrays, rng, num, classes=None):
    noise = jax.random.normal(rng, (num, noise_dim))
    return views_lib.square(draw(variables, noise, view_labels(num, classes)))

  def view_interpolate(variables, arrays, rng, num, classes=None):
    """Rows walk the latent line between two random samples (spherical interpolation);
    a row keeps one class (code)."""
    rows, cols = max(num // 10, 1), 10
    a, b = jax.random.normal(rng, (2, rows, 1, noise_dim))
    t = jnp.linspace(0.0, 1.0, cols)[None, :, None]
    noise = _slerp(a, b, t).reshape(rows * cols, noise_dim)
    row_labels = view_labels(rows, classes)
    labels = None if row_labels is None else jnp.repeat(row_labels, cols)
    images = draw(variables, noise, labels)
    return images.reshape(rows, cols, *images.shape[1:])

  def view_mix(variables, arrays, rng, num, classes=None):
    """Each row: sample A, blends of A and B's latents at 1/4, 1/2, 3/4, sample B.

    With InfoGAN codes, A and B get different codes and the code is blended too (a
    quarter of B's code, half, ...): a mix of two kinds of image, not just two styles."""
    rows = max(num // 5, 1)
    a, b = jax.random.normal(rng, (2, rows, 1, noise_dim))
    t = jnp.asarray([0.0, 0.25, 0.5, 0.75, 1.0])[None, :, None]
    noise = _slerp(a, b, t).reshape(rows * 5, noise_dim)
    row_labels = view_labels(rows, classes)
    if row_labels is None:
      labels = None
    elif num_codes:
      code_a = jax.nn.one_hot(row_labels, num_codes)
      code_b = jax.nn.one_hot(
        (row_labels + 1 + jnp.arange(rows) % (num_codes - 1 or 1)) % num_codes, num_codes
      )
      labels = ((1 - t) * code_a[:, None] + t * code_b[:, None]).reshape(rows * 5, num_codes)
    else:
      labels = jnp.repeat(row_labels, 5)
    images = draw(variables, noise, labels)
    return images.reshape(rows, 5, *images.shape[1:])

  def evaluate(variables, data, rng, eval_config=config.eval, num_samples=None):
    # Classes and InfoGAN codes are drawn in turn, clusters as often as the training images
    # fall in each. Only class labels are digits: no label accuracy for codes or clusters.
    prior = clusters.shares(data.train['cluster'], num_clusters) if num_clusters else None
    classifier = gan_evaluation.load_classifier(runs, eval_config.classifier_workdir)
    return gan_evaluation.evaluate(
      images_of,
      variables,
      classifier,
      data,
      rng,
      eval_config,
      noise_dim,
      num_conditions or num_codes,
      num_samples,
      labels_are_classes=labelled,
      label_prior=prior,
    )

  missing_classifier_warned = []

  def periodic_evaluate(variables, data, rng):
    """FID/IS/precision/recall on eval.num_examples samples, if the classifier exists."""
    try:
      return evaluate(variables, data, rng, num_samples=config.eval.num_examples)
    except FileNotFoundError as e:
      if not missing_classifier_warned:  # training goes on; say it once
        missing_classifier_warned.append(True)
        logging.warning('No image-quality metrics during training: %s', e)
      return {}

  diagnose = gan_losses.DivergenceMonitor(loss_config.kind, loss_config.pinned_warn_steps)
  views = {
    name: View(pictures(fn), options=('classes',))
    for name, fn in (('sample', view_sample), ('interpolate', view_interpolate), ('mix', view_mix))
  }
  return Task(
    name='gan',
    model=generator,
    init=init,
    loss=None,
    eval_metrics=None,
    evaluate=evaluate,
    views=views,
    default_view='sample',
    make_step=make_step,
    optimizer=make_optimizer,
    export=export,
    corpus_metrics=periodic_evaluate,
    diagnose=diagnose,
    conditioning=num_conditions or num_codes,
  )


def _slerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
  """Spherical interpolation: stays on the Gaussian shell where the generator was trained."""
  a_n = a / jnp.linalg.norm(a, axis=-1, keepdims=True)
  b_n = b / jnp.linalg.norm(b, axis=-1, keepdims=True)
  omega = jnp.arccos(jnp.clip(jnp.sum(a_n * b_n, -1, keepdims=True), -1.0, 1.0))
  so = jnp.sin(omega)
  return (jnp.sin((1.0 - t) * omega) / so) * a + (jnp.sin(t * omega) / so) * b
