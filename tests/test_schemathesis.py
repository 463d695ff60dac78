"""Schemathesis over /openapi.json against a real `footfall serve`: no 5xx, every answer as documented."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from footfall.testing.serving import footfall_json, running_server


@pytest.fixture(scope="session")
def served(database_url):
    demo = footfall_json("demo", database_url=database_url)
    # No webhook worker: this server lives for the whole session, and other tests' workers own delivery.
    # No rate limit either: schemathesis sends hundreds of requests a minute with one token.
    with running_server(database_url, "--no-worker", env={"FOOTFALL_RATE_LIMIT": "0"}) as base_url:
        yield base_url, demo["token"]


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_api_conforms_to_its_schema(served):
    # Drives Hypothesis with each operation's strategy directly: schemathesis' own pytest
    # plugin (from_fixture) does not run on this pytest.
    base_url, token = served
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 37
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

        check()
