"""Lightning callbacks: sample grids, loss curves, the run's config inside each checkpoint."""
