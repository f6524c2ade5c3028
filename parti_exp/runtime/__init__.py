"""What every run relies on and no model is about: checkpoints (safe read, atomic write, resume checks) and what a
stored config may build (``trust.py``), config -> object (``instantiate.py``), input and config checks, the console
and job log, loggers and the W&B preflight, DDP and Hydra multirun + DDP, the non-finite guard, image files, the
epoch-end schedule and small torch utilities. It imports nothing else of the package."""
