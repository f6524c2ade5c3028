"""Lightning callbacks: epoch grids (samples, reconstructions, prompts), loss curves, step checkpoints, preemption,
RNG state, caption and scene accuracy, text-image metrics, CPU threads, the model summary, and the run's config
inside each checkpoint. When an epoch-end callback runs is ``parti_exp.runtime.schedule``."""
