"""Schemathesis against the app's own OpenAPI description: generated requests (bounded
examples per operation) never get a 5xx, and every answer matches the schema.

``/v1/generate`` is left out: each valid example would render and seal images up to
1024x1024, which is what the API tests already pin, at a cost this suite cannot pay."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from provkit.server import tokens
from tests.fixtures_serve import make_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

#: One app for the whole module (schemathesis reads its schema at import), on its own
#: workspace, with an admin token so generated requests get past authentication.
HOME = Path(tempfile.mkdtemp(prefix="provkit-schema-"))
APP = make_app(HOME)
ADMIN = {
    "Authorization": "Bearer " + tokens.create("fuzz", ["admin"], db=HOME / "provkit.db").secret
}
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path="/v1/generate")


@schema.parametrize()
@settings(max_examples=3, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_5xx_and_match_the_schema(case):
    case.call_and_validate(headers=ADMIN, checks=CHECKS)
