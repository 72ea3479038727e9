"""docs/contract.md stays true to what the service serves.

The contract is written for people, so it can drift from the code without anyone noticing; this test reads
its operation tables (`| method | path | caller | … |`) and holds them against the app itself: the same
operations as the served OpenAPI document (the schema viewer's own routes aside, which the document leaves
out), and for each the caller the route's guards admit (public, citizen, any partner, a partner scope, an
operator's roles). The guards are read from the route handlers, not from the OpenAPI document, which does not
say which scope or role an operation needs.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# A table row of the contract: | METHOD | `/path` | caller | what | errors |
ROW = re.compile(r"^\|\s*(GET|POST|PUT|PATCH|DELETE)\s*\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|", re.M)
_PATH_PARAMETER_TYPE = re.compile(r"\{(\w+):[^}]+\}")  # Litestar's `{name:str}` → OpenAPI's `{name}`


def contract_operations() -> dict[tuple[str, str], str]:
    """(method, path) → the caller the contract names, every operation listed once."""
    rows = ROW.findall(CONTRACT.read_text(encoding="utf-8"))
    operations: dict[tuple[str, str], str] = {}
    for method, path, caller in rows:
        assert (method, path) not in operations, f"{method} {path} is listed twice in docs/contract.md"
        operations[(method, path)] = caller
    return operations


def guard_caller(guards: list[Any]) -> str:
    """The caller the guards admit, spelled as the contract's caller column spells it."""
    callers = []
    for guard in guards:
        captured = inspect.getclosurevars(guard).nonlocals
        if "scope" in captured:  # a partner guard made for one scope
            callers.append(f"partner: {captured['scope']}")
        elif "roles" in captured:  # an operator guard made for some roles
            callers.append(f"operator: {', '.join(captured['roles'])}")
        elif guard.__name__ == "citizen":
            callers.append("citizen")
        elif guard.__name__ == "any_partner":
            callers.append("partner")
        else:
            raise AssertionError(f"a guard this test cannot name: {guard.__qualname__}")
    return "; ".join(callers) or "public"


@pytest.fixture(scope="module")
def served(app: Litestar) -> Litestar:
    # The session's app: a second create_app() would bind every table to an engine of its own, and the session's
    # ledger writer would then write through one connection inside a transaction held on another (SQLite: locked).
    return app


def openapi_operations(app: Litestar) -> set[tuple[str, str]]:
    document = app.openapi_schema.to_schema()
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item
            if method.upper() in METHODS}


def guarded_operations(app: Litestar) -> dict[tuple[str, str], str]:
    """(method, path) → the caller its guards admit, for every route the OpenAPI document shows."""
    shown = openapi_operations(app)
    callers: dict[tuple[str, str], str] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = _PATH_PARAMETER_TYPE.sub(r"{\1}", route.path)
        for handler in route.route_handlers:
            for method in handler.http_methods & set(METHODS):
                if (method, path) in shown:
                    callers[(method, path)] = guard_caller(list(handler.resolve_guards()))
    return callers


def test_every_listed_operation_is_served(served: Litestar) -> None:
    listed = set(contract_operations())
    missing = sorted(listed - openapi_operations(served))
    assert not missing, f"docs/contract.md lists operations the service does not serve: {missing}"


def test_every_served_operation_is_listed(served: Litestar) -> None:
    unlisted = sorted(openapi_operations(served) - set(contract_operations()))
    assert not unlisted, f"operations served but missing from docs/contract.md: {unlisted}"


def test_the_contract_names_who_may_call_each_operation(served: Litestar) -> None:
    listed = contract_operations()
    guarded = guarded_operations(served)
    assert set(guarded) == openapi_operations(served), "every operation of the document has a route"
    wrong = {f"{method} {path}": {"contract": listed[(method, path)], "guards": caller}
             for (method, path), caller in sorted(guarded.items())
             if (method, path) in listed and listed[(method, path)] != caller}
    assert not wrong, f"docs/contract.md names another caller than the route's guards admit: {wrong}"


def test_the_documents_are_the_projects_own() -> None:
    """They must read on their own: every relative link and every `../` path they name stays inside the
    repository and exists there (a path that climbs out of it names something a clone does not have)."""
    root = CONTRACT.parents[1].resolve()
    for document in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = document.read_text(encoding="utf-8")
        links = re.findall(r"\]\(([^)#\s]+)", text)
        climbing = re.findall(r"(?<![\w.])((?:\.\./)+[\w./-]+)", text)
        for target in [t for t in links if not re.match(r"^[a-z]+:", t)] + climbing:
            resolved = (document.parent / target).resolve()
            assert resolved.is_relative_to(root), f"{document.name} refers to {target}, outside the repository"
            assert resolved.exists(), f"{document.name} refers to {target}, which the repository does not hold"
