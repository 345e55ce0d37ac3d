"""What drives a run, above the families: the loop, checkpoints, preemption and the
workdir contract. It reaches the families only through the `genjax.tasks` registry and
never names one."""
