"""The `mtbench` family against FastChat's own code: fschat 0.2.36's `run_judge_pair` is run on every input,
its OpenAI call stubbed to capture the messages it would send and to hand back a judgment to read.

The prompts come from FastChat's repository (not in the wheel), vendored in reference/mtbench/ (README there).
"""

from __future__ import annotations

import json
import re
import string
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pandalm_client.models import Verdict
from pandalm_serve.families import FAMILIES, Family
from pandalm_serve.families.base import ChatPrompt, PairInput, ParsedVerdict
from pandalm_serve.families.mtbench import MTBENCH

PROMPTS_FILE = Path(__file__).parent / "reference" / "mtbench" / "judge_prompts.jsonl"
JUDGE_MODEL = "gpt-4"  # FastChat's default judge (gen_judgment.py --judge-model)
VERDICT_OF_WINNER: dict[str, Verdict | None] = {"A": "response1", "B": "response2", "tie": "tie", "error": None}
VERDICT_OF_LETTER: dict[str, Verdict] = {"A": "response1", "B": "response2", "C": "tie"}


@dataclass
class FakeChatCompletion:
    """openai<1's `ChatCompletion`, as FastChat calls it: records each request, answers `judgment`."""

    judgment: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    def create(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"choices": [{"message": {"content": self.judgment}}]}


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


@dataclass
class FastChatJudge:
    """FastChat's pairwise judging of one single-turn question, with the model call stubbed."""

    common: Any
    judges: dict[str, Any]
    chat: FakeChatCompletion

    def run(self, pair: PairInput, judgment: str = "[[C]]") -> tuple[list[tuple[str, str]], str]:
        """The (role, content) messages FastChat sends for `pair`, and its winner for `judgment`."""
        # Our rule for `input` (the family's docstring), applied to FastChat's question.
        question = f"{pair.instruction}\n\n{pair.input}" if pair.input else pair.instruction
        reference = {"choices": [{"turns": [pair.reference]}]} if pair.reference else None
        judge = self.judges["math" if reference else "default"]
        self.chat.judgment = judgment
        self.chat.requests.clear()
        winner, _, _ = self.common.run_judge_pair(
            {"turns": [question]},
            {"choices": [{"turns": [pair.response1]}]},
            {"choices": [{"turns": [pair.response2]}]},
            judge,
            reference,
        )
        [request] = self.chat.requests
        assert (request["model"], request["temperature"], request["max_tokens"]) == (
            JUDGE_MODEL,
            0,
            MTBENCH.defaults.max_new_tokens,
        )
        return [(message["role"], message["content"]) for message in request["messages"]], winner


@pytest.fixture(scope="module")
def fastchat(reference_code: Path) -> Iterator[FastChatJudge]:
    # fastchat.llm_judge.common imports openai<1 and anthropic (API clients) and, through its model adapter,
    # accelerate: stubbed for this module only. transformers is imported first, for real: it looks accelerate
    # up with find_spec, which a stub without a spec breaks.
    import transformers  # noqa: F401

    chat = FakeChatCompletion()
    stubs = {
        "openai": _module(
            "openai",
            ChatCompletion=chat,
            error=types.SimpleNamespace(OpenAIError=type("OpenAIError", (Exception,), {})),
        ),
        "anthropic": _module("anthropic"),
        "accelerate": _module("accelerate", init_empty_weights=None),
        "accelerate.utils": _module("accelerate.utils", set_module_tensor_to_device=None),
    }
    loaded_before = set(sys.modules)
    with pytest.MonkeyPatch.context() as patch:
        for name, stub in stubs.items():
            patch.setitem(sys.modules, name, stub)
        from fastchat.llm_judge import common, gen_judgment

        judges = gen_judgment.make_judge_pairwise(JUDGE_MODEL, common.load_judge_prompts(str(PROMPTS_FILE)))
        yield FastChatJudge(common, judges, chat)
    # FastChat's modules hold the stubs: drop them, so that nothing after this module sees them.
    for name in set(sys.modules) - loaded_before:
        if name.startswith("fastchat"):
            del sys.modules[name]


def test_is_a_family() -> None:
    family: Family = MTBENCH
    assert FAMILIES["mtbench"] is family
    assert (family.modes, family.bos, family.label_first, family.score_range) == ({"pairwise"}, "chat", False, None)
    assert (family.defaults.max_new_tokens, family.defaults.repetition_penalty) == (2048, 1.0)


def test_vendored_prompts_are_what_fastchat_expects(fastchat: FastChatJudge) -> None:
    # gen_judgment.py picks `pair-v2` and, for questions with a reference, `pair-math-v1`; run_judge_pair reads
    # `[[A]]` outputs and fills these fields of a single-turn template.
    prompts = {line["name"]: line for line in map(json.loads, PROMPTS_FILE.read_text(encoding="utf-8").splitlines())}
    fields = {"pair-v2": {"question", "answer_a", "answer_b"}}
    fields["pair-math-v1"] = fields["pair-v2"] | {"ref_answer_1"}
    for judge, name in (("default", "pair-v2"), ("math", "pair-math-v1")):
        prompt = fastchat.judges[judge].prompt_template
        assert prompt == prompts[name]
        assert (prompt["type"], prompt["output_format"]) == ("pairwise", "[[A]]")
        assert {f for _, f, _, _ in string.Formatter().parse(prompt["prompt_template"]) if f} == fields[name]
    assert fastchat.judges["math"].ref_based and not fastchat.judges["default"].ref_based


TEXTS = [
    "What is 2 + 2?",
    "",
    "  leading and trailing whitespace  \n",
    "Écris un poème sur la mer 🌊 — en français, s'il te plaît.",
    "Line one\nLine two\n\n\nLine five",
    "Use {} and {question} and {answer_a} and {ref_answer_1} and {0} literally.",
    "{{doubled braces}} and a lone } and a lone {",
    "[[A]] is what I would answer, [[C]] otherwise.",
    "```python\ndef f(x):\n    return {'a': x}\n```",
    "Tabs\tand\r\nCRLF line ends",
    "中文问题：天空为什么是蓝色的？",
    "%s %d %(name)s",
    "   \n",
]


def _pairs() -> list[PairInput]:
    pairs = []
    for i, text in enumerate(TEXTS):
        other = TEXTS[(i + 3) % len(TEXTS)]
        pairs.append(PairInput(text, "", other, TEXTS[(i + 5) % len(TEXTS)]))
        pairs.append(PairInput(other, text, text, other, reference=TEXTS[(i + 7) % len(TEXTS)] or "4"))
        pairs.append(PairInput(text, other, "", text, reference="" if i % 2 else None))
    return pairs


PAIRS = _pairs()


def test_inputs_cover_the_cases() -> None:
    assert len(PAIRS) >= 25
    assert any(p.input for p in PAIRS) and any(not p.input for p in PAIRS)
    assert any(p.reference for p in PAIRS) and any(p.reference == "" for p in PAIRS)
    assert any(not p.response1 for p in PAIRS)


@pytest.mark.parametrize("pair", PAIRS, ids=range(len(PAIRS)))
def test_prompt_is_fastchats(fastchat: FastChatJudge, pair: PairInput) -> None:
    prompt = MTBENCH.pairwise_prompt(pair)
    messages, _ = fastchat.run(pair)
    assert isinstance(prompt, ChatPrompt)
    assert list(prompt.messages) == messages
    assert [role for role, _ in messages] == ["system", "user"]


def test_response1_is_assistant_a() -> None:
    messages = MTBENCH.pairwise_prompt(PairInput("Q", "", "first answer", "second answer")).messages
    user = messages[1][1]
    assert user.index("Assistant A's Answer]\nfirst answer\n") < user.index("Assistant B's Answer]\nsecond answer\n")


# FastChat's repository and wheel carry no judge outputs (its GPT-4 judgments are published on a model hub
# this suite cannot reach), so these are written in the format its prompt asks for, with the edge cases.
OUTPUTS = [
    "Assistant A's answer is correct and concise, while Assistant B makes an arithmetic error.\n\n[[A]]",
    "Assistant B provides a more detailed and accurate explanation. Therefore, my final verdict is: [[B]]",
    "Both assistants give the same correct answer with similar detail. Final verdict: [[C]]",
    "[[A]]",
    "",
    "   ",
    "No verdict here.",
    "$ERROR$",  # FastChat's API_ERROR_OUTPUT, when its calls fail
    "[[a]]",
    "[[ A ]]",
    "[A]",
    "[[A/B]]",
    "Assistant B is better at first sight [[B]], but on reflection: [[A]]",
    "I first thought [[C]]; final verdict: [[B]]",
    "[[A]][[B]][[C]]",
    "[[B]] Assistant B answers the question; A does not.",
    "Final verdict: [[C]] (a tie), though [[C]] was close.",
    'Output "[[A]]" if assistant A is better, "[[B]]" if assistant B is better.',
    "Réponse : [[B]] 🎉",
    "Verdict: [[D]]",
]


@pytest.mark.parametrize("output", OUTPUTS)
def test_verdict_is_fastchats(fastchat: FastChatJudge, output: str) -> None:
    _, winner = fastchat.run(PairInput("Q", "", "a", "b"), judgment=output)
    assert MTBENCH.parse_pairwise(output).verdict == VERDICT_OF_WINNER[winner]


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (OUTPUTS[0], "Assistant A's answer is correct and concise, while Assistant B makes an arithmetic error."),
        (OUTPUTS[1], "Assistant B provides a more detailed and accurate explanation. Therefore, my final verdict is:"),
        ("[[A]]", None),
        ("  Tie. [[C]]  \n", "Tie."),
        (OUTPUTS[16], "Final verdict: [[C]] (a tie), though"),
        (OUTPUTS[12], "Assistant B is better at first sight [[B]], but on reflection:"),
        ("No verdict here.", None),
    ],
)
def test_reason_is_the_text_before_the_deciding_marker(output: str, reason: str | None) -> None:
    assert MTBENCH.parse_pairwise(output).reason == reason


DEMO = MTBENCH.demo()
DEMO_REGEX = re.compile(DEMO.output_regex["pairwise"])


def test_demo_format() -> None:
    assert set(DEMO.output_regex) == {"pairwise"}
    assert any("[[A]]" in text for text in DEMO.corpus)
    assert any("[The Start of Reference Answer]" in text for text in DEMO.corpus)
    assert any("[The Start of Reference Answer]" not in text and "[User Question]" in text for text in DEMO.corpus)


@pytest.mark.parametrize(("letter", "verdict"), VERDICT_OF_LETTER.items())
def test_demo_reaches_every_verdict(letter: str, verdict: Verdict) -> None:
    output = f"Short explanation. [[{letter}]]"
    assert DEMO_REGEX.fullmatch(output)
    assert MTBENCH.parse_pairwise(output) == ParsedVerdict(verdict, "Short explanation.")


@settings(max_examples=300, deadline=None)
@given(st.from_regex(DEMO_REGEX, fullmatch=True))
def test_every_demo_output_parses(output: str) -> None:
    parsed = MTBENCH.parse_pairwise(output)
    assert parsed.verdict == VERDICT_OF_LETTER[output[-3]]
    assert parsed.reason == output[: -len(" [[A]]")].strip()


def test_demo_outputs_parse_alike_in_fastchat(fastchat: FastChatJudge) -> None:
    for letter in "ABC":
        output = f"Assistant answers are compared. [[{letter}]]"
        _, winner = fastchat.run(PairInput("Q", "", "a", "b"), judgment=output)
        assert MTBENCH.parse_pairwise(output).verdict == VERDICT_OF_WINNER[winner]


def _render(messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    # transformers' own rendering, as the demo tokenizer's apply_chat_template does it.
    from transformers.utils.chat_template_utils import render_jinja_template

    assert DEMO.chat_template is not None
    # Annotated `-> str`, it returns the rendered conversations and the assistant-token indices.
    rendered: Any = render_jinja_template(
        [messages], chat_template=DEMO.chat_template, add_generation_prompt=add_generation_prompt, bos_token="<s>"
    )
    [text], _ = rendered
    return str(text)


def test_demo_chat_template_renders_the_messages() -> None:
    messages = [{"role": role, "content": content} for role, content in MTBENCH.pairwise_prompt(PAIRS[0]).messages]
    system, user = (m["content"] for m in messages)
    text = _render(messages, add_generation_prompt=True)
    assert text == f"<s><|system|>\n{system}\n<|user|>\n{user}\n<|assistant|>\n"
    assert _render(messages, add_generation_prompt=False) == text.removesuffix("<|assistant|>\n")


def test_demo_regex_is_accepted_by_vllms_grammar_backend() -> None:
    # xgrammar, vLLM's default structured-output backend, compiles the regex and accepts what Python's does.
    import xgrammar
    from xgrammar.testing import _is_grammar_accept_string

    grammar = xgrammar.Grammar.from_regex(DEMO.output_regex["pairwise"])
    for output in ("Short explanation. [[A]]", "Assistant B, more detailed. [[B]]", "Both fine. [[C]]"):
        assert DEMO_REGEX.fullmatch(output) and _is_grammar_accept_string(grammar, output)
    for output in ("Short explanation. [[D]]", "Short [[A]]", "Short explanation.[[A]]", "[[A]]"):
        assert not DEMO_REGEX.fullmatch(output) and not _is_grammar_accept_string(grammar, output)
