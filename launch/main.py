r"""Trains an experiment, or resumes it.

  python -m launch.main --config=experiments/fruits_diffusion.py --workdir=runs/fruits_diffusion
  python -m launch.main --config=experiments/mnist_vae.py --workdir=runs/mnist_vae \
      --config.optim.learning_rate=3e-4 --config.train.steps=5000

Any config field can be overridden with --config.FIELD=VALUE; an unknown field or a
wrong type stops here, before any compute and before anything is written. Running the
same command again resumes from the latest checkpoint.

Multi-process (several hosts, or several processes on one): every process runs this
same command plus --coordinator_address=HOST:PORT --num_processes=N --process_id=I
(under SLURM's `srun` these are detected; see launch/slurm_multihost.sbatch). To try it
on one machine: python -m launch.local_cluster --num_processes=2 -- --config=... --workdir=...
"""

from absl import app, flags, logging
from ml_collections import config_flags

from genjax.run import loop
from launch import common, distributed

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics, samples.')
_ALLOW_CHANGE = flags.DEFINE_bool(
  'allow_config_change',
  False,
  'Resume even if the config differs from the workdir\'s config.json (the old one is '
  'kept as config.json.N).',
)
_COORDINATOR = flags.DEFINE_string(
  'coordinator_address',
  None,
  'HOST:PORT of process 0 in a multi-process run (with --num_processes, --process_id). '
  'Leave all three unset under SLURM: they are read from the srun step.',
)
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Processes in a multi-process run.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process, 0..num_processes-1.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  # Before JAX starts its CPU backend (XLA reads the device count once).
  said = common.cpu_devices_per_core(
    _CONFIG.value.data.batch_size,
    _NUM_PROCESSES.value or 1,
    _CONFIG.value.parallel.get('cpu_devices', 0),
  )
  if said:
    logging.info(said)
  # First: the devices of every process must be known before any is touched.
  distributed.initialize_from_flags(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  logging.info('Config:\n%s', _CONFIG.value)
  with common.user_errors_exit():
    loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value, allow_config_change=_ALLOW_CHANGE.value)


if __name__ == '__main__':
  app.run(main, flags_parser=common.parse_flags)
