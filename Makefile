# make train [ARGS="model=wgan_gp trainer.max_epochs=5"]   |   make test   |   make sample CKPT=path
# Each target creates .venv and installs the package (editable, with the dev tools and the demo's) on first use;
# make install TORCH=cpu forces torch's CPU build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install train sample test lint clean

# torch: TORCH=auto takes PyTorch's CPU builds of torch and torchvision on a machine without an NVIDIA GPU that reaches
# PyTorch's CPU index (the environment: 1.6 GB instead of 6.1 GB with the default CUDA build and its nvidia-* wheels),
# else the package index's default build; TORCH=cpu or TORCH=default forces one (scripts/torch_index.py).
TORCH ?= auto

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@index=$$($(PYTHON) scripts/torch_index.py $(TORCH)) || exit 1; \
	if [ -n "$$index" ]; then \
		echo "installing torch's CPU build from $$index (TORCH=default for the default build)"; \
		$(PY) -m pip install torch torchvision --index-url "$$index" || exit 1; \
	fi
	$(PY) -m pip install -e '.[dev,demo]'
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
