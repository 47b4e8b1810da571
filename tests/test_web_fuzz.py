"""A property-based fuzz of the explorer's OpenAPI document (schemathesis): whatever a client
sends to any endpoint, the explorer answers without a server error.

Each operation is fuzzed with valid and invalid requests (schemathesis' positive and negative
generation), and with valid requests whose path names real runs, subjects and lists, to reach
the code behind the 404s.
"""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from test_web_api import make_runs  # noqa: E402

RUNS = ("base", "reform", "sweep~plain")
SUBJECTS = ("0", "17", "4001", "3999")
LISTS = ("judgment_debtors", "honour_roll", "abnormal_operations")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from socialcredit.web import create_app

    return create_app(make_runs(tmp_path_factory.mktemp("web")))


OPERATIONS = [
    "/api/runs", "/api/runs/{run}", "/api/runs/{run}/overview",
    "/api/runs/{run}/subjects/{subject}", "/api/runs/{run}/lists",
    "/api/runs/{run}/lists/{name}", "/api/runs/{run}/policy", "/api/compare/{run_a}/{run_b}",
    "/api/runs/{run}/tables/{table}.{fmt}", "/api/runs/{run}/lists/{name}/members.{fmt}",
    "/api/compare/{run_a}/{run_b}/changed.{fmt}",
]
TABLES = ("decisions", "subjects", "snapshots", "ledger")


@pytest.fixture(scope="module")
def web_schema(app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _real(path: str, k: int) -> dict[str, str]:
    """Path parameters naming real things of the runs folder."""
    params = {"run": RUNS[k % len(RUNS)], "run_a": RUNS[k % len(RUNS)],
              "run_b": RUNS[(k + 1) % len(RUNS)], "subject": SUBJECTS[k % len(SUBJECTS)],
              "name": LISTS[k % len(LISTS)], "table": TABLES[k % len(TABLES)],
              "fmt": ("csv", "parquet")[k % 2]}
    return {n: v for n, v in params.items() if "{" + n + "}" in path}


@pytest.mark.parametrize("path", OPERATIONS)
def test_no_server_error(web_schema: Any, path: str) -> None:
    from hypothesis import given
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    op = web_schema[path]["GET"]
    strategies = [op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)]
    if "{" in path:
        strategies += [op.as_strategy(GenerationMode.POSITIVE, path_parameters=_real(path, k))
                       for k in range(3)]

    @given(case=st.one_of(*strategies))
    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        response = case.call()
        assert response.status_code < 500, (case.path_parameters, case.query, response.text)
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code >= 400 and response.status_code != 405:
            body = response.json()
            assert isinstance(body.get("detail"), str) and body["detail"], body

    fuzz()


def test_schema_lists_the_operations(web_schema: Any) -> None:
    paths = {op.ok().path for op in web_schema.get_all_operations()}
    assert paths == set(OPERATIONS)
