r"""Draws from a trained experiment with one of its family's views: pictures, or text.

  python -m launch.sample --workdir=runs/fruits_vae                     # prior samples
  python -m launch.sample --workdir=runs/mnist_vae --mode=interpolate   # latent walks
  python -m launch.sample --workdir=runs/mnist_ae --mode=reconstruct    # inputs / outputs
  python -m launch.sample --workdir=runs/mnist_cdcgan --class=7         # one class
  python -m launch.sample --workdir=runs/shakespeare_cpu --prompt="ROMEO:" --max_new_tokens=500 \
      --temperature=0.8 --top_k=200                                     # streams text
  python -m launch.sample --workdir=runs/shakespeare_cpu --interactive  # a prompt loop
  python -m launch.sample --workdir=runs/de_en --input="Ein Mann fährt Fahrrad."   # translates
  python -m launch.sample --workdir=runs/de_en --input_file=sentences.txt --beam=5  # line by line
  python -m launch.sample --workdir=runs/de_en --interactive            # one input a line
  python -m launch.sample --workdir=runs/jsb_voices --mode=compose --num=4   # MIDI, WAV, PNG
  python -m launch.sample --workdir=runs/jsb_voices --mode=harmonize --melody=test:12

Modes a family does not have are refused with the list of those it has, and so is an
option the chosen view does not take (--class for an unconditional model, --prompt for
pictures). Pictures go to a PNG (its path is printed); text to stdout, as it is generated;
music to a MIDI, a WAV and a piano-roll PNG per piece (their paths are printed).
"""

import os

import jax
from absl import app, flags, logging

from genjax import api
from genjax.config import ConfigError
from genjax.data import datasets
from launch import common, text_console

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained experiment\'s workdir.')
_MODE = flags.DEFINE_string(
  'mode',
  None,
  'Which view: sample | reconstruct | interpolate | '
  'denoise | mix | ...; default: the family\'s main view.',
)
_NUM = flags.DEFINE_integer(
  'num',
  64,
  'How many pictures (pairs for interpolate: num // 10 rows); for music, pieces (default '
  "the view's own: sample.num_pieces to compose, 1 harmonization).",
)
_SEED = flags.DEFINE_integer('seed', 0, 'Seed for latents, noise and token sampling.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step; default the latest.')
_OUT = flags.DEFINE_string(
  'out',
  None,
  'Where to write what is drawn, without the suffix '
  '(default WORKDIR/samples/MODE_stepN for pictures; text is '
  'written to a file only when given).',
)
_CLASS = flags.DEFINE_list(
  'class',
  None,
  'Conditional models: the class(es), cluster(s) or '
  'code(s) to draw, e.g. --class=7 or --class=3,5; default all in turn.',
)
# Views that take a prompt (language models).
_PROMPT = flags.DEFINE_string('prompt', '\n', 'Text: the start of the sample.')
_MAX_NEW = flags.DEFINE_integer('max_new_tokens', 500, 'Text: tokens to generate per sample.')
_TEMPERATURE = flags.DEFINE_float('temperature', 0.8, 'Text: softmax temperature; 0 is greedy.')
_TOP_K = flags.DEFINE_integer('top_k', 200, 'Text: sample among the k likeliest tokens; 0 = all.')
_TOP_P = flags.DEFINE_float('top_p', 1.0, 'Text: nucleus sampling mass; 1 = off.')
_NUM_SAMPLES = flags.DEFINE_integer('num_samples', 1, 'Text: samples generated in one batch.')
_INTERACTIVE = flags.DEFINE_bool(
  'interactive', False, 'Text: a prompt loop that keeps the model compiled between prompts.'
)
# Views that take inputs (encoder-decoders: a sentence to translate, code to summarize).
_INPUT = flags.DEFINE_string('input', None, 'Inputs: one text to translate or summarize.')
_INPUT_FILE = flags.DEFINE_string(
  'input_file', None, 'Inputs: a file of them (one sentence a line; the family splits it).'
)
_BEAM = flags.DEFINE_integer('beam', None, 'Inputs: beam size (1 = greedy); default the config\'s.')
_ALPHA = flags.DEFINE_float(
  'alpha', None, 'Inputs: length penalty exponent; default the config\'s.'
)
# Views that harmonize (music).
_MELODY = flags.DEFINE_string(
  'melody', None, "Music: the melody to harmonize, SPLIT:N of the data (test:12) or a MIDI file."
)
# Views that draw by iterating a sampler from noise; unset: the run's own settings.
_STEPS = flags.DEFINE_integer(
  'steps', None, 'Iterative samplers: steps from noise to image; default the config\'s.'
)
_GUIDANCE = flags.DEFINE_float(
  'guidance',
  None,
  'Iterative samplers: classifier-free guidance w, uncond + w (cond - uncond): 0 '
  'unconditional, 1 conditional; default the config\'s.',
)
_SAMPLER = flags.DEFINE_string(
  'sampler', None, "Iterative samplers: 'ddim' | 'ddpm' | 'euler' | 'heun'; default the config's."
)
_ETA = flags.DEFINE_float(
  'eta', None, 'Iterative samplers: DDIM noise, 0 deterministic to 1 (DDPM); default the config\'s.'
)
flags.mark_flags_as_required(['workdir'])

# View option -> the flag that sets it.
_OPTION_FLAGS = {
  'classes': _CLASS,
  'prompt': _PROMPT,
  'max_new_tokens': _MAX_NEW,
  'temperature': _TEMPERATURE,
  'top_k': _TOP_K,
  'top_p': _TOP_P,
  'num_samples': _NUM_SAMPLES,
  'input': _INPUT,
  'input_file': _INPUT_FILE,
  'beam': _BEAM,
  'alpha': _ALPHA,
  'melody': _MELODY,
  'steps': _STEPS,
  'guidance': _GUIDANCE,
  'sampler': _SAMPLER,
  'eta': _ETA,
}
# Options whose flag, when not given, leaves the view its own default (the run's config).
_GIVEN_ONLY = (
  'input',
  'input_file',
  'beam',
  'alpha',
  'melody',
  'steps',
  'guidance',
  'sampler',
  'eta',
)


def view_options(task, mode: str, view) -> dict:
  """The options the flags set for `view`; flags given for options it lacks are one error
  that names them all."""
  options = {}
  takes = sorted(o for o in view.options if o != 'on_text') or 'no options'
  unwanted = [
    f'--{flag.name}'
    for option, flag in _OPTION_FLAGS.items()
    if option not in view.options and flags.FLAGS[flag.name].present
  ]
  if _INTERACTIVE.value and 'on_text' not in view.options and 'input' not in view.options:
    unwanted.append('--interactive')
  if unwanted:
    raise ConfigError(
      f"{', '.join(unwanted)}: the {task.name} family's {mode!r} view does not take "
      f"{'it' if len(unwanted) == 1 else 'them'} (it takes {takes})."
    )
  for option, flag in _OPTION_FLAGS.items():
    given = flags.FLAGS[flag.name].present
    if option not in view.options:
      continue
    if option in _GIVEN_ONLY:
      if given:  # unset: the view's own default (the config's)
        options[option] = flag.value
      continue
    if option == 'classes':
      if given and not task.conditioning:  # what the family declared this run draws from
        raise ConfigError(
          f'--class: this {task.name} run is not conditional; it draws no class, cluster or code.'
        )
      if given:
        options['classes'] = [int(c) for c in flag.value]
    else:
      options[option] = flag.value
  if options.get('num_samples', 1) < 1 or options.get('max_new_tokens', 1) < 1:
    raise ConfigError('--num_samples and --max_new_tokens must be >= 1.')
  return options


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  said = common.cpu_devices_per_core(None)  # before JAX starts: samplers use every core
  if said:
    logging.info(said)
  with common.user_errors_exit():
    config, task, state = api.load_state(_WORKDIR.value, _STEP.value)
    rng = jax.random.PRNGKey(_SEED.value)
    mode = _MODE.value or task.default_view
    if mode not in task.views:
      raise ConfigError(f'--mode={mode!r}: the {task.name} family draws {sorted(task.views)}.')
    view = task.views[mode]
    options = view_options(task, mode, view)
    variables = task.inference_variables(state)
    if _INTERACTIVE.value and 'input' in view.options:
      text_console.each_line(view, variables, rng, options)
      return
    if _INTERACTIVE.value:
      options.pop('prompt')
      text_console.interactive(view, variables, rng, options)
      return
    # Test examples feed the views that start from data; generation alone needs none.
    arrays = datasets.load(config.data, workdir=_WORKDIR.value).test if view.needs_data else {}
    if 'on_text' in view.options and options.get('num_samples', 1) == 1:
      drawn = text_console.stream(view, variables, rng, options)
    else:
      # A view that lists 'num' among its options has its own default count (music).
      num = _NUM.value if flags.FLAGS['num'].present or 'num' not in view.options else None
      drawn = view(variables, arrays, rng, num, **options)
    out = _OUT.value
    if out is None and drawn.saved_by_default:
      out = os.path.join(_WORKDIR.value, 'samples', f'{mode}_step{int(state.step)}')
    if out:
      logging.info('Wrote %s', drawn.save(out))
    shown = drawn.show()
    if shown:
      print(shown, end='' if shown.endswith('\n') else '\n')


if __name__ == '__main__':
  app.run(main, flags_parser=common.parse_flags)
