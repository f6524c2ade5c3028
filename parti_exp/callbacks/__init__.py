"""Lightning callbacks: epoch grids, loss curves, checkpoints, preemption, RNG state, caption accuracy, and the
run's config inside each checkpoint; `schedule.py` says when an epoch-end callback runs."""
