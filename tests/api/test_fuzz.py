"""Property-based fuzzing of the live OpenAPI document (schemathesis, all its checks): no 5xx, every answer as
declared. Each operation gets its own Hypothesis run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from pandalm_serve.app import create_app
from pandalm_serve.settings import Settings
from tests.fakes import CharTokenizer, FakeEngine
from tests.support import serving


@pytest.fixture(scope="module")
def api_schema() -> Iterator[schemathesis.BaseSchema]:
    # Two judges, one that grades: every judge name and the /grade endpoint are in the schema to fuzz.
    engines = {name: FakeEngine(tokenizer=CharTokenizer(), context_length=4096) for name in ("panda", "prom")}
    settings = Settings(max_new_tokens=64, judge=["panda=pandalm:demo", "prom=prometheus2:demo"])
    with serving(create_app(settings, engines=engines)) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")


def test_every_operation_as_its_schema_declares_it(api_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[union-attr]
    wanted = {"POST /compare", "POST /batch", "POST /grade", "GET /info"}
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= wanted
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate()

        fuzz()
