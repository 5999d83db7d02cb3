"""Schemathesis against the live server's `/openapi.json`: bounded examples for every operation, schema-valid
and schema-violating, checked for 0 server errors and 0 schema violations (documented status codes, content
types, headers and response bodies). Authenticated, so write routes are exercised too.

Schemathesis' pytest plugin does not run under this pytest release, so the operations are driven with its
Python API: one Hypothesis run per operation and generation mode, failures collected and reported together.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_api import API_KEY, ApiServer, build_mirror  # noqa: E402

MAX_EXAMPLES = 12
# Left out: positive/negative data acceptance, which flag any 400 for schema-valid input; an opaque cursor or
# a filter that does not apply to a kind cannot be told apart from a valid one by a schema.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def schema_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    mirror = build_mirror(tmp_path_factory.mktemp("schema"), models=80, seed=5)
    mirror.env["HF_WEBHOOK_SECRET"] = "schemathesis-secret"  # so the webhook route answers 401, not 503
    server = ApiServer(mirror)
    yield server
    assert server.stop() == 0, "".join(server.stderr_lines)[-3000:]


def _run(operation: object, mode: object, base_url: str) -> str | None:
    @given(case=operation.as_strategy(generation_mode=mode))  # type: ignore[attr-defined]
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def check(case: object) -> None:
        case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"},  # type: ignore
                               checks=CHECKS, timeout=60)

    try:
        check()
    except Unsatisfiable:
        return None  # nothing in this operation can be made schema-violating (no parameters, free strings)
    except Exception as exc:  # a failed check, with the reproducing request in its text
        return f"{operation.label} [{mode.value}] {type(exc).__name__}: {str(exc)[:1500]}"  # type: ignore[attr-defined]
    return None


def test_every_operation_conforms(schema_server: ApiServer) -> None:
    schema = schemathesis.openapi.from_url(schema_server.url + "/openapi.json")
    assert schema.raw_schema["openapi"] == "3.1.0"
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in schemathesis.GenerationMode:
            failure = _run(operation, mode, schema_server.url)
            if failure:
                failures.append(failure)
    assert operations >= 30
    assert not failures, "\n\n".join(failures)
