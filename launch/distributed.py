"""Joins this process to a multi-process JAX run (from flags, or SLURM), or leaves it alone.

One process per host (or per GPU) runs the same program; `jax.distributed.initialize`
connects them through a coordinator (process 0), after which `jax.devices()` lists
every device of every process and a jitted step runs on all of them. It has to run
before anything touches a device: the backends are built once, on first use.
"""

from __future__ import annotations

import os

import jax
from absl import app, logging

# The variables JAX's own SLURM detection reads (jax/_src/clusters/slurm_cluster.py).
# SLURM_STEP_NODELIST exists only inside an `srun` step: a plain `python` in a batch
# script is one process, whatever --ntasks says.
_SLURM_STEP_VARS = (
  'SLURM_JOB_ID',
  'SLURM_STEP_NODELIST',
  'SLURM_NTASKS',
  'SLURM_PROCID',
  'SLURM_LOCALID',
)


def slurm_tasks() -> int:
  """Processes in the current `srun` step (0 outside one)."""
  if not all(v in os.environ for v in _SLURM_STEP_VARS):
    return 0
  return int(os.environ['SLURM_NTASKS'])


def initialize_from_flags(
  coordinator_address: str | None, num_processes: int | None, process_id: int | None
) -> None:
  """`jax.distributed.initialize` from the three flags, from SLURM, or not at all.

  All three flags, or none: none under an `srun` step of several tasks lets JAX read
  SLURM's variables (coordinator = first node of the step, port from the job id, and
  on GPUs one device per task); none elsewhere is an ordinary single-process run.
  """
  given = {
    '--coordinator_address': coordinator_address,
    '--num_processes': num_processes,
    '--process_id': process_id,
  }
  missing = [name for name, value in given.items() if value is None]
  if len(missing) not in (0, len(given)):
    raise app.UsageError(
      'A multi-process run needs all of --coordinator_address, --num_processes and '
      f'--process_id; missing {", ".join(missing)}. (Under SLURM pass none of them.)'
    )

  if jax.distributed.is_initialized():  # e.g. a caller that set it up itself
    pass
  elif not missing and num_processes > 1:
    _use_cpu_collectives()
    jax.distributed.initialize(
      coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )
  elif missing and slurm_tasks() > 1:
    _use_cpu_collectives()
    jax.distributed.initialize(cluster_detection_method='slurm')
  elif missing and 'SLURM_NTASKS' in os.environ and int(os.environ['SLURM_NTASKS']) > 1:
    logging.warning(
      'SLURM_NTASKS=%s but this is not an srun step: running as ONE process. '
      'Start it with `srun python -m launch.main ...` to use every task.',
      os.environ['SLURM_NTASKS'],
    )

  logging.info(
    'JAX process %d of %d: %d local of %d global devices (%s).',
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
    jax.default_backend(),
  )
  if jax.process_index() != 0:
    # Every process runs the same loop; process 0 speaks for all of them. The others
    # still report warnings and errors (a failing process should say why).
    logging.set_verbosity(logging.WARNING)


def _use_cpu_collectives() -> None:
  """Cross-process all-reduce on CPU devices goes through gloo (TCP).

  Without a CPU collectives implementation a multi-process CPU run fails at its first
  cross-process reduction. jax 0.10 already defaults to gloo; older versions defaulted
  to none. A choice the user made (JAX_CPU_COLLECTIVES_IMPLEMENTATION=mpi) is kept.
  On GPUs this only concerns the host (CPU) backend; NCCL does the device collectives.
  """
  if jax.config.jax_cpu_collectives_implementation is None:
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
