"""Schemathesis over every operation of our own OpenAPI document, sent in-process with a valid caller.

Each operation gets a bounded, derandomized run of schema-valid and schema-invalid requests from the caller
its guard admits (a bound citizen, a partner of a kind holding the scope, an operator with the role), and
every answer must: not be a 5xx, use a documented status and content type, match the documented schema
(problem+json included) and headers, reject invalid input with a 4xx, and, when it succeeds, refuse the
same request without a token. One test per tag, so a failure names its area; each lists every failing
operation rather than stopping at the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import TAGS
from api.context import AppContext
from partners.scopes import ALLOWED_SCOPES
from partners.services import create_partner
from partners.tables import Partner
from scenarios.catalog import seed_default_scenarios
from tests.conftest import ApiClient
from tests.factories import Session, authorization_for, operator_session
from tests.fuzz_support import BASE_URL, callers_by_operation, load_schema, loop_session
from tests.lending_factories import enterprise_authorization, owned_enterprise, post_demand, publish_product

# Examples per operation and mode: sized so the whole file stays well inside CI's budget on 2 cores.
POSITIVE_EXAMPLES = int(os.environ.get("XINYI_FUZZ_POSITIVE", "8"))
NEGATIVE_EXAMPLES = int(os.environ.get("XINYI_FUZZ_NEGATIVE", "4"))
STATEFUL_SCENARIOS = int(os.environ.get("XINYI_FUZZ_SCENARIOS", "40"))
STATEFUL_STEPS = 6

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection, ignored_auth]

# A partner kind that may hold each scope, in order of preference (`partners.scopes.ALLOWED_SCOPES`).
_KIND_PREFERENCE = ("bank", "merchant", "government", "data_source", "city_peer")
_UNLIMITED = 1_000_000


def _settings(examples: int) -> hypothesis.settings:
    return hypothesis.settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                               phases=[Phase.explicit, Phase.generate], print_blob=False,
                               suppress_health_check=list(HealthCheck))


async def _partner(client: ApiClient, kind: str) -> Session:
    """A partner of `kind` holding every scope its kind allows, without rate limit or quota."""
    issued = await create_partner(name=f"fuzz {kind} {secrets.token_hex(3)}", kind=kind,
                                  scenario="travel" if kind == "merchant" else None)
    # Fuzzing is many requests a second: lift this partner's limits so answers are about the input.
    await Partner.update({Partner.rate_limit_per_second: _UNLIMITED, Partner.daily_quota: _UNLIMITED}).where(
        Partner.client_id == issued.client_id)
    token = await client.post("/v1/auth/token", json={
        "grant_type": "client_credentials", "client_id": issued.client_id, "client_secret": issued.client_secret})
    assert token.status_code == 200, token.text
    return Session(phone="", access_token=token.json()["access_token"], refresh_token=None)


@pytest.fixture(scope="module")
async def fuzz_schema(client: ApiClient) -> schemathesis.BaseSchema:
    served = await client.get("/schema/openapi.json")
    assert served.status_code == 200
    return load_schema(served.json(), loop_session(client, asyncio.get_running_loop()))


@pytest.fixture(scope="module")
async def caller_headers(client: ApiClient, ctx: AppContext) -> dict[tuple[str, str], dict[str, str]]:
    """(METHOD, path) → Authorization header of a caller the operation's guard admits.

    The callers share a small world, so linked operations have real objects to reach: the citizen
    represents an enterprise with a posted financing demand, and the bank has a published product, a
    pending and an approved authorization from the citizen and a pending one from the enterprise.
    """
    await seed_default_scenarios()
    owned = await owned_enterprise(client, ctx, owner_name="模糊")
    partners = {kind: await _partner(client, kind) for kind in _KIND_PREFERENCE}
    bank = partners["bank"]
    await authorization_for(client, bank, owned.owner, approve=False)
    await authorization_for(client, bank, owned.owner)
    await enterprise_authorization(client, bank, owned, approve=False)
    await publish_product(client, bank)
    await post_demand(client, owned)
    operators: dict[str, dict[str, str]] = {}
    headers: dict[tuple[str, str], dict[str, str]] = {}
    for key, caller in callers_by_operation(client.app).items():
        if caller is None:
            headers[key] = {}
        elif caller.kind == "citizen":
            headers[key] = owned.headers
        elif caller.kind == "operator":
            role = caller.need or "officer"
            if role not in operators:
                operators[role] = (await operator_session(client, role=role)).headers
            headers[key] = operators[role]
        else:
            kind = next(k for k in _KIND_PREFERENCE if caller.need is None or caller.need in ALLOWED_SCOPES[k])
            headers[key] = partners[kind].headers
    return headers


def _fuzz_operation(operation: Any, *, headers: dict[str, str]) -> None:
    """Positive then negative examples of one operation, every answer checked."""

    def send(case: Any) -> None:
        case.call_and_validate(base_url=BASE_URL, headers=headers, checks=CHECKS)

    raw = operation.definition.raw
    takes_input = bool(raw.get("parameters") or raw.get("requestBody"))
    for mode, examples in ((GenerationMode.POSITIVE, POSITIVE_EXAMPLES), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):
        if examples <= 0 or (mode is GenerationMode.NEGATIVE and not takes_input):
            continue  # nothing to make invalid
        test: Callable[[], None] = _settings(examples)(hypothesis.given(case=operation.as_strategy(mode))(send))
        try:
            test()
        except hypothesis.errors.Unsatisfiable:
            if mode is GenerationMode.POSITIVE:
                raise
            # Nothing in the request can be made invalid (e.g. a free-form string path parameter only).


def _first_tag(operation: Any) -> str:
    tags = operation.definition.raw.get("tags") or ["untagged"]
    return str(tags[0])


async def test_every_secured_operation_is_fuzzed_with_a_token(
        fuzz_schema: Any, caller_headers: dict[tuple[str, str], dict[str, str]]) -> None:
    """Guards the caller mapping: a guard it failed to read would leave its operation fuzzed anonymously."""
    for result in fuzz_schema.get_all_operations():
        operation = result.ok()
        security = operation.definition.raw.get("security") or []
        # `{}` among the alternatives: anonymous callers are served too (the OAuth endpoints' optional client
        # authentication), so the operation is fuzzed without a token.
        secured = bool(security) and {} not in security
        assert bool(caller_headers[(operation.method.upper(), operation.path)]) == secured, operation.label


async def test_every_operation_has_a_known_tag(fuzz_schema: Any) -> None:
    """Guards the per-tag split below: an untagged or unknown-tag operation would never be fuzzed."""
    known = {tag.name for tag in TAGS}
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert len(operations) > 100
    assert {op.label: _first_tag(op) for op in operations if _first_tag(op) not in known} == {}


async def test_every_error_answer_is_documented_as_problem_json(fuzz_schema: Any) -> None:
    """No operation is left with Litestar's default `{status_code, detail}` error body: what the app sends
    for every 4xx and 5xx is RFC 9457 problem+json, one shared `Problem` component."""
    raw = fuzz_schema.raw_schema
    assert set(raw["components"]["schemas"]["Problem"]["required"]) == {"type", "title", "status", "code"}
    undocumented = {}
    for result in fuzz_schema.get_all_operations():
        operation = result.ok()
        for status, response in operation.definition.raw["responses"].items():
            if int(status) >= 400 and response.get("content") != {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}:
                undocumented[f"{operation.label} {status}"] = response.get("content")
        assert "503" in operation.definition.raw["responses"], operation.label
    assert undocumented == {}


@pytest.mark.parametrize("tag", [tag.name for tag in TAGS])
async def test_operations_conform_to_their_schema(tag: str, client: ApiClient, fuzz_schema: Any,
                                                  caller_headers: dict[tuple[str, str], dict[str, str]]) -> None:
    operations = [result.ok() for result in fuzz_schema.get_all_operations() if _first_tag(result.ok()) == tag]
    assert operations, f"no operation tagged {tag}"

    def run_all() -> list[str]:
        failures: list[str] = []
        for operation in operations:
            headers = caller_headers[(operation.method.upper(), operation.path)]
            try:
                _fuzz_operation(operation, headers=headers)
            except (Exception, FailureGroup) as exc:  # every failing operation is reported, not the first only
                failures.append(f"{operation.label}:\n{exc}")
        return failures

    failures = await asyncio.to_thread(run_all)
    assert not failures, "\n\n".join(failures)


async def test_linked_operations_conform(fuzz_schema: Any,
                                         caller_headers: dict[tuple[str, str], dict[str, str]]) -> None:
    """Stateful: sequences follow the links Schemathesis infers between operations (an id one answer
    lists is the path of the next: approve the authorization the citizen sees, read the product the bank
    published…), each step sent by the caller its operation admits. Operator routes stay out: following
    their links would pause the seeded scenarios or suspend partners other tests rely on."""
    workflow = fuzz_schema.exclude(tag="admin").as_state_machine()

    class Workflow(workflow):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": BASE_URL, "headers": caller_headers[(case.method.upper(), case.path)]}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs,
                                   recorder=getattr(self, "recorder", None))

    settings = hypothesis.settings(_settings(STATEFUL_SCENARIOS), stateful_step_count=STATEFUL_STEPS,
                                   phases=[Phase.generate])

    def run() -> None:
        # The server keeps state, so a later scenario can find a link's source answering differently than
        # Hypothesis recorded; that ends exploration early and is no finding (Schemathesis' own runner treats
        # it the same). A failed check is raised as FailureGroup or FlakyFailure instead, and fails the test.
        with contextlib.suppress(hypothesis.errors.FlakyStrategyDefinition):
            Workflow.run(settings=settings)

    await asyncio.to_thread(run)
