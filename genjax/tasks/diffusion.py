"""The diffusion family: denoising diffusion and flow matching with a U-Net, EMA weights.

One network (genjax.models.UNet) learns what `diffusion.objective` names, with time t in
[0, 1] from data to noise (genjax.tasks.diffusion_objectives): 'eps' (DDPM's noise
prediction), 'v' (Salimans & Ho's velocity), 'vdm' (VDM's likelihood bound, in bits per
dimension) on a variance-preserving log-SNR schedule (`diffusion.schedule`), or 'flow'
(flow matching on the straight path from data to noise). The generic step trains it;
every example draws its time, noise and label dropout from its own key (or its time from
its batch position, `diffusion.stratified_times`), so 'pmap', 'jit' and one device agree.
Samples, views and evaluation use the EMA of the parameters (train.ema_decay, 0.9995 by
default).

Class-conditional (`model.num_classes > 0`, on the data's labels): a share
`model.label_dropout` of the training labels is replaced by the null class, so that one
network learns the conditional and the unconditional model and sampling can guide
(`sample.guidance` w: guided = uncond + w (cond - uncond); diffusion_guidance).

`evaluate` reports how it sampled (sampler, steps, eta, guidance, nfe), the objective's
loss over the test set, the wall time of `eval.timed_samples` (64) samples once compiled,
with `eval.bits_per_dim` VDM's bound on -log p(x) in bits per dimension over the test
set, and the GAN family's image metrics (FID, Inception Score, precision/recall, class
shares, label accuracy) of `eval.num_samples` samples scored by the trained classifier
in `eval.classifier_workdir` (genjax.tasks.gan_evaluation). The samples come from the
evaluation's noise through the sampler, so a deterministic sampler (DDIM with eta 0, the
ODEs) makes them a function of that noise alone.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from genjax import config as config_lib
from genjax.config import ConfigError
from genjax.models import UNet
from genjax.tasks import diffusion_objectives as objectives
from genjax.tasks import diffusion_schedules as schedules
from genjax.tasks import gan_evaluation
from genjax.tasks.base import Task, per_example_keys, to_float
from genjax.tasks.diffusion_views import Settings, Sampling, check_settings, inpaint_mask
from genjax.tasks.diffusion_views import make_views

UNET_FIELDS = (
  'channels',
  'channel_mults',
  'num_res_blocks',
  'attention_resolutions',
  'num_heads',
  'dropout',
  'num_groups',
  'num_classes',
  'time_scale',
  'patch_size',
  'fourier_exponents',
)
DTYPES = ('float32', 'bfloat16')
# The step key's stream for stratified times' offset: past any batch position, which
# per_example_keys folds in.
_TIMES_STREAM = 2**31 - 1


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  config_lib.add_fields(
    c,
    {
      # genjax.models.UNet's arguments, but the image shape (from the data).
      'model.channels': 32,  # base width; level i has channels * channel_mults[i]
      'model.channel_mults': (1, 2, 2),  # a halving between levels: 28 -> 14 -> 7
      'model.num_res_blocks': 1,  # per encoder level (the decoder has one more)
      # Feature-map sizes with self-attention after each residual block, e.g. (7,) on
      # 28x28 or (8,) on 32x32; () = only the middle block's (always there).
      'model.attention_resolutions': (),
      'model.num_heads': 4,  # must divide every level's width
      'model.dropout': 0.0,  # in each residual block, training only
      'model.num_groups': 8,  # GroupNorm groups (clipped to a divisor of each width)
      'model.num_classes': 0,  # > 0: class-conditional on the data's labels (that many)
      'model.time_scale': 1000.0,  # t in [0, 1] is embedded as t * time_scale
      # p > 1: the U-Net works on p x p patches (H/p x W/p maps of p*p*C channels), its
      # first level 1/p^2 the cost; attention_resolutions count patched sizes.
      'model.patch_size': 1,
      # VDM's input features: sin and cos of 2 pi 2^n x for each n, e.g. (6, 7) for a
      # likelihood on 8-bit images (genjax.models.unet.fourier_features); () for none.
      'model.fourier_exponents': (),
      'model.dtype': 'float32',  # computation dtype: 'float32' | 'bfloat16'
      # Share of training labels replaced by the null class (classifier-free guidance
      # needs the unconditional model too); unused by an unconditional model.
      'model.label_dropout': 0.1,
      'diffusion.objective': 'eps',  # 'eps' | 'v' | 'vdm' (bits/dim bound) | 'flow'
      'diffusion.schedule': 'cosine',  # 'cosine' | 'linear' (DDPM) | 'linear_logsnr' (VDM)
      # Log-SNR at t = 0 and t = 1; 0 = the schedule's own (cosine +-15, linear DDPM's,
      # linear_logsnr 13.3 / -5). Unused by 'flow'.
      'diffusion.logsnr_max': 0.0,
      'diffusion.logsnr_min': 0.0,
      # Training times stratified over the global batch, (u + position / B) mod 1 with one
      # u a step (VDM's low-discrepancy draw): each batch covers [0, 1) evenly, a lower
      # variance of the loss's t-integral. False: an independent t per example.
      'diffusion.stratified_times': False,
      'sample.sampler': 'ddim',  # 'ddim' (eta) | 'ddpm' | 'euler' | 'heun' (ODE)
      'sample.steps': 50,  # sampler steps from noise to image
      'sample.eta': 0.0,  # DDIM: 0 deterministic, 1 DDPM's ancestral noise
      # Classifier-free guidance w: uncond + w (cond - uncond); 1 = plain conditional.
      'sample.guidance': 1.0,
      # Guide only at times lo < t <= hi (t = 1 is noise), plain conditional elsewhere:
      # (0, 1) is every step; Kynkäänniemi et al. 2024 leave out the noisiest times.
      'sample.guidance_interval': (0.0, 1.0),
      'sample.clip_x0': True,  # clip the model's x0 estimate to the data range each step
      'sample.inpaint_mask': 'right',  # the inpaint view hides the 'right' half | 'centre'
      'eval.classifier_workdir': '',  # a trained classifier run: FID/IS/precision/recall
      'eval.num_samples': 10_000,  # generated images scored by launch.evaluate
      # launch.evaluate: VDM's bound on -log p(x) over the test set, in bits per
      # dimension (diffusion objectives; 'vdm' trains on it).
      'eval.bits_per_dim': False,
      # evaluate times this many samples with the sample settings once compiled (the best
      # of 3 runs), as sampling_seconds_N; 0 skips it.
      'eval.timed_samples': 64,
    },
  )
  c.train.ema_decay = 0.9995  # samples and evaluation use the EMA weights


def schedule_of(d: ml_collections.ConfigDict) -> schedules.Schedule:
  if d.schedule not in schedules.KINDS:
    raise ConfigError(f'diffusion.schedule={d.schedule!r} is not one of {schedules.KINDS}.')
  try:
    return schedules.Schedule(d.schedule, d.logsnr_max or None, d.logsnr_min or None)
  except ValueError as e:
    raise ConfigError(f'diffusion.logsnr_max/logsnr_min: {e}.') from e


def unet_of(config: ml_collections.ConfigDict, image_shape) -> UNet:
  m = config.model
  if m.dtype not in DTYPES:
    raise ConfigError(f'model.dtype={m.dtype!r} is not one of {DTYPES}.')
  try:
    model = UNet(**{k: m[k] for k in UNET_FIELDS}, dtype=jnp.dtype(m.dtype))
    model.check_image(image_shape[0], image_shape[1])
  except ValueError as e:
    raise ConfigError(f'config.model: {e}.') from e
  return model


def check(config: ml_collections.ConfigDict, spec) -> None:
  """Combinations that cannot work fail before any compute, saying what to change."""
  m, d = config.model, config.diffusion
  if d.objective not in objectives.OBJECTIVES:
    raise ConfigError(f'diffusion.objective={d.objective!r} is not one of {objectives.OBJECTIVES}.')
  if m.num_classes:
    if 'label' not in spec or not spec['label'].num_values:
      raise ConfigError(
        f'model.num_classes={m.num_classes}: the {config.data.name} data has no labels; '
        'set model.num_classes=0 (unconditional).'
      )
    if m.num_classes != spec['label'].num_values:
      raise ConfigError(
        f'model.num_classes={m.num_classes}: the {config.data.name} data has '
        f'{spec["label"].num_values} classes; set model.num_classes='
        f'{spec["label"].num_values}.'
      )
  if not 0.0 <= m.label_dropout < 1.0:
    raise ConfigError(f'model.label_dropout={m.label_dropout} must be in [0, 1) (0.1 is usual).')
  check_settings(Settings.of(config.sample), m.num_classes, m.label_dropout)
  if config.eval.bits_per_dim and d.objective == 'flow':
    raise ConfigError(
      'eval.bits_per_dim: the VDM bound needs a variance-preserving diffusion '
      "(diffusion.objective 'eps', 'v' or 'vdm'), not 'flow'; set eval.bits_per_dim=False."
    )
  inpaint_mask(config.sample.inpaint_mask, spec.image_shape())


def build(config: ml_collections.ConfigDict, spec, runs=None) -> Task:
  check(config, spec)
  image_shape = tuple(spec.image_shape())
  model = unet_of(config, image_shape)
  objective = config.diffusion.objective
  schedule = schedule_of(config.diffusion)
  num_classes, label_dropout = config.model.num_classes, config.model.label_dropout
  stratified_times = config.diffusion.stratified_times
  settings = Settings.of(config.sample)
  sampling = Sampling(
    model, objective, schedule, num_classes, image_shape, clip_x0=config.sample.clip_x0
  )

  def denoiser(params, train: bool, rng, index):
    """The model as the objectives call it, on the whole batch; training dropout masks
    are drawn per example (`example_ids`), whichever device holds it."""
    if not (train and config.model.dropout > 0):
      return lambda z, t, labels: model.apply(params, z, t, labels)
    return lambda z, t, labels: model.apply(
      params, z, t, labels, train=True, rngs={'dropout': rng}, example_ids=index
    )

  def per_example(params, batch, rng, train: bool):
    """([B] losses, {term: [B]} VDM terms in bits/dim). Every draw (t, noise, label
    dropout, dropout masks) comes from the example's own key, so it is the same whichever
    device holds the example."""
    x = sampling.to_model(to_float(batch['image']))
    labels = batch['label'] if num_classes else None
    keys = per_example_keys(rng, batch['index'])
    noise_keys, label_keys = objectives.split(keys)
    if labels is not None and train and label_dropout:
      labels = objectives.drop_labels(label_keys, labels, num_classes, label_dropout)
    denoise = denoiser(params, train, rng, batch['index'])
    t = None  # each example's own draw, from its key
    if train and stratified_times:
      offset_rng = jax.random.fold_in(rng, _TIMES_STREAM)
      t = objectives.stratified_times(offset_rng, batch['index'], config.data.batch_size)
    if objective == 'vdm':
      terms = objectives.vdm_terms(denoise, x, noise_keys, labels, schedule, antithetic=False, t=t)
      terms = {k: objectives.bits_per_dim(v, x) for k, v in terms.items()}
      return sum(terms.values()), terms
    return objectives.loss(objective, denoise, x, noise_keys, labels, schedule=schedule, t=t), {}

  def init(rng, batch):
    x = sampling.to_model(to_float(batch['image'][:1]))
    labels = batch['label'][:1] if num_classes else None
    return model.init({'params': rng}, x, jnp.zeros((1,)), labels), {}

  def loss(params, batch, rng):
    values, terms = per_example(params, batch, rng, train=True)
    return jnp.mean(values), {f'{k}_bpd': jnp.mean(v) for k, v in terms.items()}

  def eval_metrics(params, batch, rng):
    values, terms = per_example(params, batch, rng, train=False)
    return {'loss': values, **{f'{k}_bpd': v for k, v in terms.items()}}

  eval_metrics_jit = jax.jit(eval_metrics)

  @jax.jit
  def bound(variables, batch, rng):
    """VDM's terms of -log p(x) in bits/dim [B] (the output read as eps for any diffusion
    objective), with t stratified over the batch; a conditional model's is -log p(x | y)
    plus log K for the label under a uniform class prior, a bound on -log p(x)."""
    x = objectives.centered_levels(to_float(batch['image']))
    labels = batch['label'] if num_classes else None

    def eps_of(z, t, y):
      out = model.apply(variables, z, t, y)
      return objectives.output_to_x0_eps(out, z, t, objective, schedule)[1]

    terms = objectives.vdm_terms(eps_of, x, rng, labels, schedule, antithetic=True)
    terms = {k: objectives.bits_per_dim(v, x) for k, v in terms.items()}
    if num_classes:
      terms['label'] = jnp.full(x.shape[:1], math.log2(num_classes) / math.prod(x.shape[1:]))
    return terms

  def images_from_noise(variables_and_rng, z, labels):
    variables, rng = variables_and_rng
    return sampling.from_noise(variables, z, labels, settings, rng)

  def image_quality(variables, data, rng, eval_config, num_samples=None):
    classifier = gan_evaluation.load_classifier(runs, eval_config.classifier_workdir)
    return gan_evaluation.evaluate(
      images_from_noise,
      (variables, rng),
      classifier,
      data,
      rng,
      eval_config,
      math.prod(image_shape),  # the noise the sampler starts from, flat
      num_classes,
      num_samples,
    )

  def sampling_seconds(variables, rng, num=64, repeats=3):
    """Wall time of `num` samples with the config's settings, once compiled: the best of
    `repeats` runs, so that a slow spell of the machine does not set the figure (as
    bench.lm times its steps)."""
    labels = jnp.arange(num, dtype=jnp.int32) % num_classes if num_classes else None
    jax.block_until_ready(sampling.sample(variables, rng, labels, num, settings).x)
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      jax.block_until_ready(sampling.sample(variables, rng, labels, num, settings).x)
      times.append(time.perf_counter() - start)
    return round(min(times), 3)

  def evaluate(variables, data, rng, eval_config=config.eval):
    loss_rng, bound_rng, time_rng, sample_rng = jax.random.split(rng, 4)
    results = {'objective': objective, **settings.describe()}
    batch_size = eval_config.batch_size
    per = _over_test_set(
      lambda b, r: eval_metrics_jit(variables, b, r), data.test, batch_size, loss_rng
    )
    results.update({k: float(np.mean(v)) for k, v in per.items()})
    results['num_examples'] = int(len(data.test['image']))
    if eval_config.bits_per_dim:
      terms = _over_test_set(lambda b, r: bound(variables, b, r), data.test, batch_size, bound_rng)
      results['bits_per_dim'] = float(np.mean(sum(terms.values())))
      results.update({f'bits_per_dim_{k}': float(np.mean(v)) for k, v in terms.items()})
    if eval_config.timed_samples:
      n = eval_config.timed_samples
      results[f'sampling_seconds_{n}'] = sampling_seconds(variables, time_rng, n)
    if eval_config.classifier_workdir:
      results.update(image_quality(variables, data, sample_rng, eval_config))
    else:
      logging.warning('eval.classifier_workdir is empty: no FID/IS/precision/recall.')
    return results

  missing_classifier_warned = []

  def periodic_evaluate(variables, data, rng):
    """FID/IS/precision/recall of eval.num_examples samples, if the classifier exists."""
    try:
      return image_quality(variables, data, rng, config.eval, config.eval.num_examples)
    except FileNotFoundError as e:
      if not missing_classifier_warned:  # training goes on; say it once
        missing_classifier_warned.append(True)
        logging.warning('No image-quality metrics during training: %s', e)
      return {}

  return Task(
    name='diffusion',
    model=model,
    init=init,
    loss=loss,
    eval_metrics=eval_metrics,
    evaluate=evaluate,
    views=make_views(sampling, settings, label_dropout, config.sample.inpaint_mask),
    default_view='sample',
    corpus_metrics=periodic_evaluate,
    conditioning=num_classes,
  )


def _over_test_set(fn, arrays, batch_size: int, rng) -> dict[str, np.ndarray]:
  """`fn(batch, rng) -> {name: [B]}` over every test example, in batches of one shape (the
  last padded with the first rows, then dropped), each batch with its own key."""
  n = len(arrays['image'])
  size = min(batch_size, n)
  parts = []
  for i, start in enumerate(range(0, n, size)):
    idx = np.arange(start, start + size) % n
    batch = {k: arrays[k][idx] for k in ('image', 'label') if k in arrays}
    batch['index'] = np.arange(size, dtype=np.int32)
    out = jax.device_get(fn(batch, jax.random.fold_in(rng, i)))
    parts.append({k: np.asarray(v)[: n - start] for k, v in out.items()})
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
