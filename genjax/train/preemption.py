"""SIGTERM / Ctrl-C: finish the current step, checkpoint, exit cleanly.

Schedulers (SLURM, Kubernetes, preemptible VMs) send SIGTERM before killing a job;
users press Ctrl-C. Both set a flag the loop reads between steps, so the checkpoint
is of a whole step. A second Ctrl-C interrupts at once, for the impatient.
"""

from __future__ import annotations

import contextlib
import signal
import threading


class Flag:

  def __init__(self):
    self.requested = False
    self.signal_name = ''

  def _handler(self, signum, frame):
    del frame
    if self.requested and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.requested = True
    self.signal_name = signal.Signals(signum).name

  @contextlib.contextmanager
  def catching_signals(self):
    # Signal handlers can only be installed from the main thread; elsewhere (a run
    # started from a worker thread) the default behaviour stays.
    if threading.current_thread() is not threading.main_thread():
      yield self
      return
    previous = {s: signal.signal(s, self._handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
      yield self
    finally:
      for s, handler in previous.items():
        signal.signal(s, handler)
