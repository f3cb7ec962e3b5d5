"""Reading the command line's input files, writing its outputs, and a progress bar."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ._errors import UsageError


class InputError(UsageError):
    """An input file the command cannot use; the message names the file and the line."""


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSON Lines file, read lazily."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(value, dict):
                raise InputError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
            yield number, value


def text_field(path: Path, number: int, obj: dict[str, Any], name: str, *, default: str | None = None) -> str:
    value = obj.get(name, default)
    if not isinstance(value, str):
        missing = "missing" if name not in obj else f"a {type(value).__name__}, not a string"
        raise InputError(f"{path}:{number}: field {name!r} is {missing}")
    return value


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """One line of a model's outputs file: `{"id", "instruction", "input"?, "output"}`."""

    id: str
    instruction: str
    input: str
    output: str
    line: int


def read_outputs(path: Path) -> dict[str, ModelOutput]:
    """A model's outputs by id, in file order; a duplicate id is an error naming both lines."""
    outputs: dict[str, ModelOutput] = {}
    for number, obj in read_jsonl(path):
        raw_id = obj.get("id")
        if not isinstance(raw_id, str | int) or isinstance(raw_id, bool):
            raise InputError(f"{path}:{number}: field 'id' is missing or not a string")
        item_id = str(raw_id)
        if item_id in outputs:
            raise InputError(f"{path}:{number}: duplicate id {item_id!r} (first on line {outputs[item_id].line})")
        outputs[item_id] = ModelOutput(
            id=item_id,
            instruction=text_field(path, number, obj, "instruction"),
            input=text_field(path, number, obj, "input", default=""),
            output=text_field(path, number, obj, "output"),
            line=number,
        )
    if not outputs:
        raise InputError(f"{path}: no outputs in it")
    return outputs


def shared_prompts(
    first: tuple[Path, dict[str, ModelOutput]], second: tuple[Path, dict[str, ModelOutput]]
) -> tuple[list[str], list[str], list[str]]:
    """Ids in both files (in the first file's order), ids only in the first, ids only in the second.

    An id with another instruction or input in the other file is an error: it is not the same prompt.
    """
    (path_a, a), (path_b, b) = first, second
    shared = [i for i in a if i in b]
    for item_id in shared:
        if (a[item_id].instruction, a[item_id].input) != (b[item_id].instruction, b[item_id].input):
            raise InputError(
                f"{path_b}:{b[item_id].line}: id {item_id!r} has another instruction or input than in "
                f"{path_a}:{a[item_id].line}"
            )
    return shared, [i for i in a if i not in b], [i for i in b if i not in a]


def pair_item(item_id: str, first: ModelOutput, second: ModelOutput) -> dict[str, Any]:
    """The compare request of one prompt: `first`'s output as response 1, `second`'s as response 2."""
    return {
        "id": item_id,
        "instruction": first.instruction,
        "input": first.input,
        "response1": first.output,
        "response2": second.output,
    }


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class ProgressBar:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self._last = -1

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if total:
            percent = done * 100 // total
            if percent == self._last and done != total:
                return
            self._last = percent
            filled = percent * 30 // 100
            line = f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"
        else:
            line = f"\r{self.label} {done}"
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


class QuietStdout:
    """Standard output that goes quiet when its reader leaves (`pandalm compare --json | head`).

    Output stops without a traceback, and the command still ends with the exit code of its outcome.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.closed_by_reader = False

    def write(self, text: str) -> int:
        if not self.closed_by_reader:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self.closed_by_reader:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._silence()

    def _silence(self) -> None:
        self.closed_by_reader = True
        # Python flushes stdout once more at exit: aimed at /dev/null, that flush cannot fail again.
        # A stream that is not a real file (a test's capture) has nothing flushed at exit.
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
