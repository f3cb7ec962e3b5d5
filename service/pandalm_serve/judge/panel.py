"""The service's judges by name, and the jury: a request names a judge (or several), the panel finds it.

A request without a judge goes to the batch's judge, else to the first one configured. A jury (a list of names)
judges the pair with each judge concurrently and returns the verdict most of them gave: a strict majority of the
judges that gave a verdict; without one, a tie marked `consistent: false`, as two disagreeing orders of a swap are.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

from pandalm_client.models import (
    CompareRequest,
    CompareResult,
    ErrorBody,
    JudgeOptions,
    JurorResult,
    ResultWarning,
    Usage,
)

from ..errors import InvalidOptionError, ServiceError
from .judge import Judge
from .reading import merged_warnings, total_tokens

JudgeChoice = str | list[str] | None
# Told of every caller's pair a judge judged: (the request, its batch's options, its result, the judge, the caller
# as the metrics name it). The service's judge health (quality/health.py) listens.
Observer = Callable[[CompareRequest, JudgeOptions | None, CompareResult, str, str], None]


def _ignore(
    request: CompareRequest, batch_options: JudgeOptions | None, result: CompareResult, judge: str, key: str
) -> None:
    return None


class Panel:
    """Every judge of the service, the default (the first) first."""

    def __init__(self, judges: Sequence[Judge], observe: Observer = _ignore) -> None:
        if not judges:
            raise ValueError("a service needs at least one judge")
        self.judges = {judge.name: judge for judge in judges}
        self.default = judges[0]
        self.observe = observe

    def __iter__(self) -> Iterator[Judge]:
        return iter(self.judges.values())

    def named(self, name: str) -> Judge:
        """The judge called `name`; 422 `invalid_option` naming the judges there are."""
        judge = self.judges.get(name)
        if judge is None:
            raise InvalidOptionError(
                f"there is no judge {name!r} here; this server's judges: {', '.join(self.judges)} (GET /info)",
                details={"option": "judge", "value": name},
            )
        return judge

    def choose(self, *choices: JudgeChoice) -> list[Judge]:
        """The judge(s) the first given choice names (an item's, then its batch's); the default without one."""
        choice = next((c for c in choices if c is not None), None)
        if choice is None:
            return [self.default]
        names = [choice] if isinstance(choice, str) else choice
        return [self.named(name) for name in names]

    def grader(self, name: str | None) -> Judge:
        """The judge that grades: the one named, else the first whose family grades."""
        if name is not None:
            return self.named(name)
        for judge in self:
            if "absolute" in judge.family.modes:
                return judge
        raise InvalidOptionError(
            "none of this server's judges grades single responses (GET /info: `modes`)",
            details={"option": "judge", "value": None},
        )

    def accept(self, batch_options: JudgeOptions | None = None, *choices: JudgeChoice) -> list[Judge]:
        """Refuse, before any work, what no judge can take: an unknown judge, an invalid batch-level option, a
        full queue. Returns the chosen judges."""
        judges = self.choose(*choices)
        for judge in judges:
            judge.accept(batch_options)
        return judges

    async def compare(
        self,
        request: CompareRequest,
        batch_options: JudgeOptions | None = None,
        index: int | None = None,
        client: str = "",
        started: float | None = None,
        batch_judge: JudgeChoice = None,
        key: str = "-",
    ) -> CompareResult:
        """Judge one pair with the judge it names (or its jury); raise `ServiceError` as `Judge.compare` does.
        `key` is the caller as the metrics name it."""
        started = started if started is not None else time.perf_counter()
        choice = request.judge if request.judge is not None else batch_judge
        judges = self.choose(choice)
        if not isinstance(choice, list):
            result = await judges[0].compare(request, batch_options, index, client, started)
            self.observe(request, batch_options, result, judges[0].name, key)
            return result
        return await self._jury(judges, request, batch_options, index, client, started, key)

    async def _jury(
        self,
        judges: list[Judge],
        request: CompareRequest,
        batch_options: JudgeOptions | None,
        index: int | None,
        client: str,
        started: float,
        key: str,
    ) -> CompareResult:
        outcomes = await asyncio.gather(
            *(judge.compare(request, batch_options, index, client, started) for judge in judges),
            return_exceptions=True,
        )
        results: list[CompareResult] = []
        for judge, outcome in zip(judges, outcomes, strict=True):
            if isinstance(outcome, ServiceError):
                results.append(CompareResult(id=request.id, index=index, status="error", error=outcome.body(),
                                             judge=judge.name))  # fmt: skip
            elif isinstance(outcome, BaseException):
                raise outcome  # a bug, or cancellation: not one juror's failure
            else:
                results.append(outcome)
                # Each member's verdict is its judge's own: counted as that judge's.
                self.observe(request, batch_options, outcome, judge.name, key)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        return jury_result(request.id, index, [j.name for j in judges], results, latency_ms)


def jury_result(
    request_id: str | None, index: int | None, names: list[str], results: list[CompareResult], latency_ms: float
) -> CompareResult:
    """The jury's result from its members' (in the request's order)."""
    jurors = [
        JurorResult(judge=name, verdict=r.verdict, status=r.status, reason=r.reason, consistent=r.consistent,
                    error=r.error)
        for name, r in zip(names, results, strict=True)
    ]  # fmt: skip
    votes = Counter(r.verdict for r in results if r.status == "ok" and r.verdict is not None)
    warnings = merged_warnings(r.warnings for r in results)
    for juror in jurors:
        if juror.status != "ok":
            warnings.append(
                ResultWarning(code="juror_failed", message=f"judge {juror.judge!r} gave no verdict ({juror.status})")
            )
    common = dict(
        id=request_id,
        index=index,
        judge=names,
        jury=jurors,
        latency_ms=latency_ms,
        usage=Usage(
            prompt_tokens=total_tokens(r.usage.prompt_tokens for r in results),
            completion_tokens=total_tokens(r.usage.completion_tokens for r in results),
        ),
        cached=all(r.cached for r in results),
        warnings=warnings,
    )
    if not votes:
        failed = next((r for r in results if r.status == "unparsed"), None)
        if failed is not None:
            return CompareResult(status="unparsed", agreement=0.0, **common)
        error = ErrorBody(code=results[0].error.code if results[0].error else "internal_error",
                          message="no judge of the jury judged this pair; see `jury`")  # fmt: skip
        return CompareResult(status="error", error=error, **common)
    top, count = votes.most_common(1)[0]
    voters = sum(votes.values())
    majority = count * 2 > voters
    verdict = top if majority else "tie"
    reason = next((r.reason for r in results if r.verdict == verdict and r.status == "ok"), None)
    return CompareResult(
        status="ok",
        verdict=verdict,
        reason=reason,
        consistent=None if majority else False,
        agreement=round(votes.get(verdict, 0) / len(names), 6),
        **common,
    )
