"""Sampling a trained diffusion or flow model, and what the family draws with it.

`Sampling` holds the model with its objective and schedule and turns the pure samplers of
`diffusion_samplers` into jitted calls on a model's variables: draw (from noise, or from a
given initial noise, optionally with snapshots), invert test images to their noise, fill
a masked region. `Settings` is how to draw (sampler, steps, eta, guidance): the config's
`sample.*`, which `launch.sample --steps/--guidance/--sampler/--eta` override per call.
Images travel in [0, 1]; the model's space is [-1, 1] (`to_model`, `to_images`).

The views (`make_views`), each with the 'classes' option of a conditional model:
  sample       a square grid of samples (what training writes every sample_every)
  interpolate  rows of 10: a test image, 8 decodes along the slerp between the two
               images' DDIM-inverted noises, the second test image
  inpaint      test images with the right half (or a centre square) hidden, in rows of
               8: the masked input, the model's fill, the original
  trajectory   per sample two rows from noise (left) to image (right): the states z_t,
               and the model's x0 estimates, the final sample last in both
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from genjax.config import ConfigError
from genjax.step import parallel
from genjax.tasks import diffusion_objectives as objectives
from genjax.tasks import diffusion_samplers as samplers
from genjax.tasks import views as views_lib
from genjax.tasks.base import View, float_images, pictures

SAMPLERS = ('ddim', 'ddpm', 'euler', 'heun')
ODE_SAMPLERS = ('euler', 'heun')
MASKS = ('right', 'centre')
SNAPSHOTS = 9  # trajectory columns before the final sample


@dataclasses.dataclass(frozen=True)
class Settings:
  """How to draw: `sampler` 'ddim' (eta) | 'ddpm' (eta = 1) | 'euler' | 'heun' (ODE),
  `steps`, DDIM's `eta`, and classifier-free `guidance` w (guided = uncond + w (cond -
  uncond): 0 unconditional, 1 plain conditional), applied at times lo < t <= hi of
  `guidance_interval` (lo, hi); (0, 1) is every step."""

  sampler: str = 'ddim'
  steps: int = 50
  eta: float = 0.0
  guidance: float = 1.0
  guidance_interval: tuple[float, float] = (0.0, 1.0)

  @classmethod
  def of(cls, sample_config) -> Settings:
    return cls(
      sample_config.sampler,
      int(sample_config.steps),
      float(sample_config.eta),
      float(sample_config.guidance),
      tuple(float(t) for t in sample_config.guidance_interval),
    )

  def override(self, **options) -> Settings:
    """These settings with the options that are not None (a view's keyword options)."""
    given = {k: v for k, v in options.items() if v is not None}
    for name in ('steps',):
      if name in given:
        given[name] = int(given[name])
    for name in ('eta', 'guidance'):
      if name in given:
        given[name] = float(given[name])
    return dataclasses.replace(self, **given)

  @property
  def guided(self) -> bool:
    """Guidance w = 1 is the plain conditional output: one model call on B, not 2B."""
    return self.guidance != 1.0

  @property
  def nfe(self) -> int:
    """Model calls per sample (a guided call runs the batch twice over, as one call)."""
    if self.sampler in ODE_SAMPLERS:
      return samplers.num_function_evaluations(self.sampler, self.steps)
    return self.steps

  @property
  def interval(self) -> tuple[float, float] | None:
    """The guidance interval a sampler takes: None when guidance acts at every step."""
    return None if self.guidance_interval == (0.0, 1.0) else self.guidance_interval

  def compiled(self) -> Settings:
    """What a compiled sampler depends on: the guidance value travels as an argument,
    only whether there is guidance (and its interval) changes the program."""
    return dataclasses.replace(self, guidance=2.0 if self.guided else 1.0)

  def describe(self) -> dict:
    return {
      'sampler': self.sampler,
      'steps': self.steps,
      'eta': self.eta,
      'guidance': self.guidance,
      **({'guidance_interval': list(self.interval)} if self.guided and self.interval else {}),
      'nfe': self.nfe,
    }


def check_settings(settings: Settings, num_classes: int, label_dropout: float) -> None:
  """A combination that cannot work is a ConfigError naming the field (and its flag)."""
  s = settings
  if s.sampler not in SAMPLERS:
    raise ConfigError(
      f'sample.sampler={s.sampler!r} (--sampler) is not one of {SAMPLERS}: '
      "'ddim' (with sample.eta), 'ddpm' (ancestral, eta 1), 'euler' or 'heun' (ODE)."
    )
  if s.steps < 1:
    raise ConfigError(f'sample.steps={s.steps} (--steps) must be >= 1; 50 is usual for DDIM.')
  if s.eta < 0:
    raise ConfigError(f'sample.eta={s.eta} (--eta) must be >= 0 (0 deterministic DDIM, 1 DDPM).')
  if s.eta and s.sampler != 'ddim':
    kind = 'eta = 1 by definition' if s.sampler == 'ddpm' else 'a deterministic ODE solver'
    raise ConfigError(
      f'sample.eta={s.eta} (--eta) with sample.sampler={s.sampler!r}: that sampler is {kind}; '
      "use sample.sampler='ddim' to choose eta, or leave sample.eta at 0."
    )
  if s.guidance < 0:
    raise ConfigError(
      f'sample.guidance={s.guidance} (--guidance) must be >= 0: 0 unconditional, '
      '1 conditional, above 1 guided (1.5 to 3 is usual).'
    )
  lo, hi = s.guidance_interval
  if not 0.0 <= lo < hi <= 1.0:
    raise ConfigError(
      f'sample.guidance_interval={s.guidance_interval} must be (lo, hi) with 0 <= lo < hi <= 1:'
      ' guidance acts at times lo < t <= hi (t = 1 is noise); (0, 1) is every step.'
    )
  if s.guided and not num_classes:
    raise ConfigError(
      f'sample.guidance={s.guidance} (--guidance) needs a class-conditional model '
      '(model.num_classes > 0, as in experiments/mnist_diffusion.py); an unconditional one '
      'has nothing to guide by: leave it at 1.'
    )
  if s.guided and not label_dropout:
    raise ConfigError(
      f'sample.guidance={s.guidance} (--guidance) mixes in the unconditional output, but '
      'model.label_dropout=0 never trained the null class: train with '
      'model.label_dropout=0.1, or leave sample.guidance at 1.'
    )


class Sampling:
  """The model with its objective and schedule, drawn through jitted samplers.

  Every call takes the variables as an argument, so one compile serves any checkpoint
  (or the EMA); the settings and sizes are static, so each combination compiles once.
  """

  def __init__(self, model, objective, schedule, num_classes, image_shape, clip_x0=True):
    self.model, self.objective, self.schedule = model, objective, schedule
    self.num_classes, self.image_shape = num_classes, tuple(image_shape)
    self.null_label = num_classes if num_classes else None
    self.clip_x0 = 1.0 if clip_x0 else None
    self._sample = jax.jit(self._sample_fn, static_argnames=('settings', 'num', 'trajectory'))
    self._invert = jax.jit(self._invert_fn, static_argnames=('steps',))
    self._inpaint = jax.jit(self._inpaint_fn, static_argnames=('settings',))

  # Between images [0, 1] and the model's data space [-1, 1].
  def to_model(self, images01: jax.Array) -> jax.Array:
    if self.objective == 'vdm':  # VDM's likelihood wants the 8-bit bins' centres
      return objectives.centered_levels(images01)
    return 2.0 * images01 - 1.0

  @staticmethod
  def to_images(x: jax.Array) -> np.ndarray:
    return np.clip((np.asarray(x, np.float32) + 1.0) / 2.0, 0.0, 1.0)

  def denoiser(self, variables):
    """The model on a batch split over this process's devices: sampling is a batch of
    independent rows, and one device leaves the other cores of a CPU idle."""

    def denoise(z, t, labels):
      z = parallel.spread_batch(z)
      labels = None if labels is None else parallel.spread_batch(labels)
      return self.model.apply(variables, z, t, labels)

    return denoise

  def _common(self, settings: Settings, guidance):
    guided = settings.guided
    return dict(
      objective=self.objective,
      schedule=self.schedule,
      steps=settings.steps,
      guidance=guidance if guided else None,
      null_label=self.null_label if guided else None,
      guidance_interval=settings.interval if guided else None,
      clip_x0=self.clip_x0,
    )

  def _sample_fn(self, variables, rng, labels, guidance, z_init, *, settings, num, trajectory):
    shape = (num, *self.image_shape)
    kwargs = dict(self._common(settings, guidance), trajectory=trajectory, z_init=z_init)
    denoise = self.denoiser(variables)
    if settings.sampler in ODE_SAMPLERS:
      return samplers.ode_sample(denoise, rng, shape, labels, method=settings.sampler, **kwargs)
    eta = 1.0 if settings.sampler == 'ddpm' else settings.eta
    return samplers.ddim_sample(denoise, rng, shape, labels, eta=eta, **kwargs)

  def sample(
    self, variables, rng, labels, num: int, settings: Settings, z_init=None, trajectory: int = 0
  ) -> samplers.Samples:
    """`num` samples in the model's space (labels [num] or None; z_init [num, H, W, C]
    the noise at t = 1, drawn from rng when None)."""
    return self._sample(
      parallel.replicate_locally(variables),
      rng,
      labels,
      jnp.float32(settings.guidance),
      z_init,
      settings=settings.compiled(),
      num=num,
      trajectory=trajectory,
    )

  def from_noise(self, variables, z, labels, settings: Settings, rng):
    """Images [N, H, W, C] in [0, 1] from flat noise z [N, H * W * C]: a pure function of
    z for deterministic samplers; stochastic ones draw from `rng` folded with z's first
    value, so each batch gets its own noise. Traceable (gan_evaluation jits it)."""
    z_init = z.reshape(z.shape[0], *self.image_shape)
    key = jax.random.fold_in(rng, jax.lax.bitcast_convert_type(z[0, 0], jnp.uint32))
    out = self._sample_fn(
      variables,
      key,
      labels,
      jnp.float32(settings.guidance),
      z_init,
      settings=settings,
      num=z.shape[0],
      trajectory=0,
    )
    return jnp.clip((out.x + 1.0) / 2.0, 0.0, 1.0)

  def _invert_fn(self, variables, x, labels, *, steps):
    denoise = self.denoiser(variables)
    return samplers.ddim_invert(
      denoise, x, labels, objective=self.objective, schedule=self.schedule, steps=steps
    ).x

  def invert(self, variables, x, labels, steps: int) -> jax.Array:
    """Test images (model space) -> their noise at t = 1 by DDIM run forwards in time
    (for 'flow', Euler steps of its ODE); decoding with deterministic DDIM returns them."""
    return self._invert(parallel.replicate_locally(variables), x, labels, steps=steps)

  def _inpaint_fn(self, variables, rng, x_known, mask, labels, guidance, *, settings):
    kwargs = self._common(settings, guidance)
    return samplers.inpaint_sample(
      self.denoiser(variables), rng, x_known, mask, labels, eta=settings.eta, **kwargs
    ).x

  def inpaint(self, variables, rng, x_known, mask, labels, settings: Settings) -> jax.Array:
    guidance = jnp.float32(settings.guidance)
    return self._inpaint(
      parallel.replicate_locally(variables),
      rng,
      x_known,
      mask,
      labels,
      guidance,
      settings=settings.compiled(),
    )


def slerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
  """Spherical interpolation of flat vectors: noise stays on the Gaussian shell."""
  a_n = a / jnp.linalg.norm(a, axis=-1, keepdims=True)
  b_n = b / jnp.linalg.norm(b, axis=-1, keepdims=True)
  omega = jnp.arccos(jnp.clip(jnp.sum(a_n * b_n, -1, keepdims=True), -1.0, 1.0))
  so = jnp.maximum(jnp.sin(omega), 1e-6)
  return (jnp.sin((1.0 - t) * omega) / so) * a + (jnp.sin(t * omega) / so) * b


def inpaint_mask(kind: str, image_shape) -> np.ndarray:
  """[H, W, 1]: 1 where the pixel is kept, 0 where the model fills it in."""
  h, w = image_shape[:2]
  mask = np.ones((h, w, 1), np.float32)
  if kind == 'right':
    mask[:, w // 2 :] = 0.0
  elif kind == 'centre':
    mask[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2] = 0.0
  else:
    raise ConfigError(f'sample.inpaint_mask={kind!r} is not one of {MASKS}.')
  return mask


def make_views(sampling: Sampling, defaults: Settings, label_dropout: float, mask_kind: str):
  """The family's views ({mode: View}); `defaults` are the config's settings."""
  num_classes = sampling.num_classes
  sampling_options = ('classes', 'steps', 'guidance', 'sampler', 'eta')

  def settings_for(**options) -> Settings:
    settings = defaults.override(**options)
    check_settings(settings, num_classes, label_dropout)
    return settings

  def view_labels(num, classes=None):
    """The requested classes in turn (all in turn when none are), or None when the
    model is unconditional."""
    if classes and not num_classes:
      raise ConfigError(
        '--class needs a class-conditional model (model.num_classes > 0, as in '
        'experiments/mnist_diffusion.py).'
      )
    if not num_classes:
      return None
    bad = [c for c in classes or () if not 0 <= c < num_classes]
    if bad:
      raise ConfigError(f'--class {bad}: the model has classes 0..{num_classes - 1}.')
    pool = np.asarray(classes) if classes else np.arange(num_classes)
    return jnp.asarray(np.resize(pool, num), jnp.int32)

  def view_sample(variables, arrays, rng, num, classes=None, **options):
    settings = settings_for(**options)
    out = sampling.sample(variables, rng, view_labels(num, classes), num, settings)
    return views_lib.square(sampling.to_images(out.x))

  def view_trajectory(variables, arrays, rng, num, classes=None, **options):
    settings = settings_for(**options)
    n = max(num // 10, 1)
    out = sampling.sample(
      variables,
      rng,
      view_labels(n, classes),
      n,
      settings,
      trajectory=min(SNAPSHOTS, settings.steps),
    )
    final = out.x[None]
    states = jnp.concatenate([out.trajectory['z'], final])  # [K + 1, n, H, W, C]
    estimates = jnp.concatenate([out.trajectory['x0'], final])
    rows = jnp.stack([states, estimates], axis=1)  # [K + 1, 2, n, ...]
    rows = jnp.moveaxis(rows, 0, -4)  # [2, n, K + 1, H, W, C]
    rows = jnp.swapaxes(rows, 0, 1)  # per sample: its states row, then its estimates row
    return sampling.to_images(rows.reshape(2 * n, *rows.shape[2:]))

  def test_pairs(arrays, rows, classes):
    """Indices (first, second) [rows] of test images; a conditional model's pairs share
    a class (the requested ones in turn), which also conditions inversion and decoding."""
    if not num_classes:
      if classes:
        view_labels(1, classes)  # the same refusal as the other views
      idx = np.arange(2 * rows) % len(arrays['image'])
      return idx[0::2], idx[1::2], None
    if classes:
      row_classes = np.asarray(view_labels(rows, classes))
    else:  # every class the test images have a pair of, in turn
      counts = np.bincount(arrays['label'], minlength=num_classes)
      row_classes = np.resize(np.flatnonzero(counts >= 2), rows)
    first, second = [], []
    for r, c in enumerate(row_classes):
      of_class = np.flatnonzero(arrays['label'] == c)
      if len(of_class) < 2:
        raise ConfigError(f'interpolate: the test set has fewer than two images of class {c}.')
      j = 2 * int(np.sum(row_classes[:r] == c))  # rows of the same class take the next pair
      first.append(of_class[j % len(of_class)])
      second.append(of_class[(j + 1) % len(of_class)])
    return np.asarray(first), np.asarray(second), jnp.asarray(row_classes, jnp.int32)

  def view_interpolate(variables, arrays, rng, num, classes=None, steps=None):
    del rng  # inversion and DDIM decoding (eta 0) are deterministic
    settings = settings_for(steps=steps).override(sampler='ddim', eta=0.0, guidance=1.0)
    rows, cols = max(num // 10, 1), 10
    first, second, labels = test_pairs(arrays, rows, classes)
    images = float_images(arrays)
    a, b = images[first], images[second]
    both = jnp.concatenate([sampling.to_model(jnp.asarray(a)), sampling.to_model(jnp.asarray(b))])
    both_labels = None if labels is None else jnp.concatenate([labels, labels])
    noise = sampling.invert(variables, both, both_labels, settings.steps)
    flat = noise.reshape(2, rows, 1, -1)
    t = jnp.linspace(0.0, 1.0, cols - 2)[None, :, None]
    z = slerp(flat[0], flat[1], t).reshape(rows * (cols - 2), *sampling.image_shape)
    walk_labels = None if labels is None else jnp.repeat(labels, cols - 2)
    out = sampling.sample(variables, jax.random.PRNGKey(0), walk_labels, len(z), settings, z_init=z)
    walk = sampling.to_images(out.x).reshape(rows, cols - 2, *sampling.image_shape)
    return np.concatenate([a[:, None], walk, b[:, None]], axis=1)

  def view_inpaint(variables, arrays, rng, num, classes=None, steps=None, guidance=None, eta=None):
    """Unconditional (the kept part is the only hint) unless --class asks for classes;
    DDIM steps with eta 1 (RePaint's) unless --eta says otherwise."""
    if guidance is not None and not classes:
      raise ConfigError('inpaint: --guidance needs --class; without one the fill is unconditional.')
    settings = settings_for(steps=steps, guidance=guidance).override(
      eta=1.0 if eta is None else eta
    )
    if settings.eta < 0:
      raise ConfigError(f'--eta={settings.eta} must be >= 0 (1, the default here, is RePaint\'s).')
    if not classes:
      settings = settings.override(guidance=1.0)
    original = float_images(arrays, num)
    mask = inpaint_mask(mask_kind, sampling.image_shape)
    labels = view_labels(len(original), classes) if classes else None
    filled = sampling.inpaint(
      variables, rng, sampling.to_model(jnp.asarray(original)), mask, labels, settings
    )
    masked = original * mask + 0.5 * (1.0 - mask)  # grey where hidden
    return views_lib.interleave(masked, sampling.to_images(filled), original)

  return {
    'sample': View(pictures(view_sample), options=sampling_options),
    'interpolate': View(pictures(view_interpolate), options=('classes', 'steps'), needs_data=True),
    'inpaint': View(
      pictures(view_inpaint), options=('classes', 'steps', 'guidance', 'eta'), needs_data=True
    ),
    'trajectory': View(pictures(view_trajectory), options=sampling_options),
  }
