"""An OpenAI-compatible server that answers PandaLM prompts with PandaLM-7B's recorded outputs.

    python -m pandalm_serve.tools.replay --testset testset-v1.json --outputs pandalm-7b-testset-v1.json

Point the service's remote engine at it (`--engine remote --remote-url http://127.0.0.1:9000`) to
check the whole path, prompt to parsed verdict, against the real model's outputs without a GPU.
A prompt with no recorded output gets a 404, so a prompt that differs by one byte is caught.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from pandalm_client.testset import LABEL_VERDICTS, load_testset, pandalm_label

from ..judge.format import render_output
from ..judge.prompt import build_prompt

logger = logging.getLogger(__name__)

MODEL_NAME = "pandalm-7b-replay"


def pandalm_text(output: dict[str, Any]) -> str:
    """The text PandaLM wrote for one published output."""
    verdict = LABEL_VERDICTS[pandalm_label(output["pandalm_result"])]
    return render_output(verdict, output["pandalm_reason"], output["pandalm_reference"])


def recorded_answers(testset: Path, outputs: Path) -> dict[str, str]:
    """Prompt -> PandaLM's output, for every test item that has a recorded output."""
    by_idx = {int(o["idx"]): o for o in json.loads(outputs.read_text())}
    answers: dict[str, str] = {}
    for item in load_testset(testset):
        output = by_idx.get(item.idx)
        if output is None:
            continue
        prompt = build_prompt(item.instruction, item.input, item.response1, item.response2)
        text = pandalm_text(output)
        if answers.setdefault(prompt, text) != text:
            logger.warning("item %d repeats an earlier prompt with another output; serving the first", item.idx)
    return answers


def make_app(answers: dict[str, str], delay_s: float = 0.0) -> web.Application:
    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        if delay_s:
            await asyncio.sleep(delay_s)  # a replica's generation time
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        text = answers.get(prompt) if isinstance(prompt, str) else None
        if text is None:
            return web.json_response(
                {"error": {"message": "no recorded output for this prompt", "type": "NotFoundError", "code": 404}},
                status=404,
            )
        return web.json_response(
            {
                "id": "cmpl-replay",
                "object": "text_completion",
                "model": body.get("model", MODEL_NAME),
                "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": None, "completion_tokens": None},
            }
        )

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL_NAME, "object": "model"}]})

    async def health(request: web.Request) -> web.Response:
        # What vLLM's server answers, and what a router (vllm-router) polls before it sends work.
        return web.Response(status=200)

    app = web.Application(client_max_size=16 * 2**20)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pandalm_serve.tools.replay", description=__doc__.split("\n")[0])
    parser.add_argument("--testset", type=Path, required=True, help="PandaLM's testset-v1.json")
    parser.add_argument(
        "--outputs", type=Path, required=True, help="PandaLM-7B's outputs, e.g. pandalm-7b-testset-v1.json"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument(
        "--delay-s", type=float, default=0.0, help="seconds before each answer, as a real model takes (routing tests)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    answers = recorded_answers(args.testset, args.outputs)
    logger.info("replaying %d recorded outputs on http://%s:%d", len(answers), args.host, args.port)
    web.run_app(make_app(answers, args.delay_s), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
