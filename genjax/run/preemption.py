"""SIGTERM / Ctrl-C: finish the current step, checkpoint, exit cleanly.

Schedulers (SLURM, Kubernetes, preemptible VMs) send SIGTERM before killing a job;
users press Ctrl-C. Both set a flag the loop reads between steps, so the checkpoint
is of a whole step. A second Ctrl-C interrupts at once, for the impatient.

In a multi-process run every process must stop after the same step, or the ones still
stepping wait forever in a collective for the ones that left. There JAX's preemption
service owns SIGTERM (it is installed by `jax.distributed.initialize`): a notice to any
process reaches all, and they agree on the step to stop at. Ctrl-C is turned into such
a notice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

import jax
from jax.experimental import multihost_utils


class Flag:
  def __init__(self):
    self.requested = False
    self.signal_name = ''
    self._synced = jax.process_count() > 1 and jax.config.jax_enable_preemption_service

  def should_stop(self, step: int) -> bool:
    """Whether to checkpoint and stop after `step`: call it after every step.

    Across processes, True comes at the same step on all of them.
    """
    if self._synced:
      if multihost_utils.reached_preemption_sync_point(step):
        self.requested, self.signal_name = True, self.signal_name or 'SIGTERM'
        return True
      return False
    return self.requested

  def _handler(self, signum, frame):
    del frame
    if self.requested and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.requested = True
    self.signal_name = signal.Signals(signum).name

  def _interrupt_all(self, signum, frame):
    del frame
    if self.signal_name:
      raise KeyboardInterrupt
    self.signal_name = signal.Signals(signum).name
    os.kill(os.getpid(), signal.SIGTERM)  # a preemption notice, shared with every process

  @contextlib.contextmanager
  def catching_signals(self):
    # Signal handlers can only be installed from the main thread; elsewhere (a run
    # started from a worker thread) the default behaviour stays.
    if threading.current_thread() is not threading.main_thread():
      yield self
      return
    if self._synced:  # SIGTERM stays with JAX's preemption service
      previous = {signal.SIGINT: signal.signal(signal.SIGINT, self._interrupt_all)}
    else:
      previous = {s: signal.signal(s, self._handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
      yield self
    finally:
      for s, handler in previous.items():
        signal.signal(s, handler)
