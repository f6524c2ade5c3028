# make train [ARGS="model=wgan_gp trainer.max_epochs=5"]   |   make test   |   make sample CKPT=path
# Each target creates .venv and installs the package (editable, with the dev tools) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install train sample test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(PY) -m parti_exp.train $(ARGS)

sample: $(STAMP)
	$(PY) -m parti_exp.sample ckpt_path=$(CKPT) $(ARGS)

# One test process per core, each on one thread: the cores stay busy, and no test waits on threads that another
# process (or another job on the machine) holds. An idle process takes tests queued for a busy one (worksteal).
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -n auto --dist worksteal $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check parti_exp tests scripts

clean:
	rm -rf $(VENV) logs
