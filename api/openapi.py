"""Every operation documents the problem+json answers it can give, from one rule instead of 105 handlers.

Litestar 2 has no app-wide `responses=` (litestar#4470) and documents errors in its own
`{status_code, detail, extra}` shape, which is not what `api.problems` sends. `ProblemResponses` is a
route plugin: as each route is registered it adds a `ResponseSpec` of `api.problems.Problem`
(`application/problem+json`) for every status the operation can answer with, derived from what the
handler takes and who may call it:

- any input (body, path or query parameter): 400 unreadable request, 422 invalid value;
- a body (a `data` parameter, or `opt["media_types"]` for a handler reading it raw): 413 too large, 415 not JSON;
- a guard: 401 no or bad token, 403 wrong caller, 404 a named or implied resource is not the caller's
  to see, 429 rate limit or daily cap;
- a path parameter: 404;
- a guarded write (POST, PUT, PATCH, DELETE): 409 state conflict or idempotent request in flight;
- `/v1/auth/…`: 401 bad grant, 429 throttled;
- every operation: 503 a dependency (database, shared store, gateway) is unavailable.

A handler adds statuses the rule cannot see with `opt={"problem_statuses": (…)}`, or names all of them with
`opt={"problem_statuses_only": (…)}` (the OAuth endpoints, whose errors follow RFC 6749 rather than the rule).
Statuses a handler documents itself in `responses=` are left alone.

The request bodies say what api.bodies enforces: `StrictStructSchemas` gives every Struct that forbids unknown
fields `additionalProperties: false` (and binds the type parameters of a Struct subclassing a generic one, so
`class RecordPage(Page[RecordOut])` is published as `RecordPage` with `items` of `RecordOut`), and
`OptionalBodyOperation` publishes a body that may be left out as `required: false` with the object's schema
alone (Litestar says `required: true`, object or `null`).
A handler that reads its body raw documents it with `operation_class=with_request_body(…)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Generic, TypeVar, get_args, get_origin, get_type_hints

import msgspec

# Litestar's Struct schema plugin is not exported; extending it keeps every other detail of its schemas.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.typing import FieldDefinition

from api.problems import PROBLEM_JSON, Problem

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Signature names Litestar fills from the connection itself, not from the request's input.
_CONNECTION_KWARGS = frozenset({"request", "state", "scope", "headers", "cookies", "socket", "body"})
_AUTH_PREFIX = "/v1/auth/"

_DESCRIPTIONS: dict[int, str] = {
    400: "The request could not be read (the body is not valid JSON, or nests deeper than the parser goes)",
    401: "No token, or the token or grant is invalid, expired or revoked",
    403: "The caller may not use this operation (principal kind, role or scope)",
    404: "Not found, or not the caller's to see",
    409: "Conflicts with the current state, or the same Idempotency-Key is still in flight",
    413: "The body is larger than the limit",
    415: "The body is not JSON",
    422: "A value in the request is invalid",
    429: "A rate limit, quota or daily cap was reached (see Retry-After)",
    503: "A dependency is unavailable; try again (see Retry-After)",
}


def problem_statuses(handler: HTTPRouteHandler, route: HTTPRoute, method: str) -> set[int]:
    """The problem statuses `handler` can answer with on `route` for `method` (see the module docstring)."""
    if (only := handler.opt.get("problem_statuses_only")) is not None:
        return set(only)
    # Injected dependencies (`Injected[...]`) are the app's own objects, not the request's input.
    parameters = {name for name, field in handler.parsed_fn_signature.parameters.items()
                  if not field.is_di_field} - _CONNECTION_KWARGS
    # A handler reading the raw body declares the media types it takes instead of a `data` parameter.
    has_body = "data" in parameters or "media_types" in handler.opt
    guarded = bool(handler.resolve_guards())
    statuses = {503}
    if parameters or route.path_parameters or has_body:
        statuses |= {400, 422}
    if has_body:
        statuses |= {413, 415}
    if guarded:
        statuses |= {401, 403, 404, 429}
        if method in _WRITES:
            statuses.add(409)
    if route.path_parameters:
        statuses.add(404)
    if route.path.startswith(_AUTH_PREFIX):
        statuses |= {401, 429}
    statuses.update(handler.opt.get("problem_statuses", ()))  # merged across layers at registration
    return statuses


def problem_specs(statuses: Iterable[int]) -> dict[int, ResponseSpec]:
    return {status: ResponseSpec(data_container=Problem, media_type=PROBLEM_JSON, generate_examples=False,
                                 description=_DESCRIPTIONS.get(status, HTTPStatus(status).phrase))
            for status in sorted(statuses)}


class ProblemResponses(ReceiveRoutePlugin):
    """Adds the problem+json responses of every HTTP operation as its route is registered."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            declared = dict(handler.responses or {})
            statuses: set[int] = set()
            for method in handler.http_methods:
                statuses |= problem_statuses(handler, route, method)
            # Statuses the handler documents itself win; the rest replace Litestar's default error bodies.
            handler.responses = {**problem_specs(statuses - set(declared)), **declared}


class StrictStructSchemas(StructSchemaPlugin):
    """Litestar's Struct schemas, plus `additionalProperties: false` for a Struct with `forbid_unknown_fields`.
    Registered as an app plugin, it is asked before Litestar's own Struct plugin."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        if _type_bindings(field_definition.annotation):
            field_definition = _BoundFieldDefinition(
                **{name: getattr(field_definition, name) for name in FieldDefinition.__slots__})
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


def _type_bindings(struct: Any) -> dict[Any, Any]:
    """The type variables a Struct class binds by subclassing parametrized generic Structs (`Page[RecordOut]`).

    Litestar resolves the type variables of a parametrized annotation (`Page[RecordOut]`) but not those a
    subclass binds: it would publish `items` of `RecordPage(Page[RecordOut])` as any object."""
    bindings: dict[Any, Any] = {}
    for klass in reversed(getattr(struct, "__mro__", ())):
        for base in getattr(klass, "__orig_bases__", ()):
            origin = get_origin(base)
            if isinstance(origin, type) and origin is not Generic and issubclass(origin, msgspec.Struct):
                bindings.update(zip(getattr(origin, "__parameters__", ()), get_args(base), strict=True))
    return bindings


def _bind(hint: Any, bindings: dict[Any, Any]) -> Any:
    if isinstance(hint, TypeVar):
        return bindings.get(hint, hint)
    parameters = getattr(hint, "__parameters__", ())
    return hint[tuple(bindings.get(p, p) for p in parameters)] if parameters else hint


class _BoundFieldDefinition(FieldDefinition):
    """A Struct's field definition whose type hints have the type variables its generic bases bind."""

    __slots__ = ()

    def get_type_hints(self, *, include_extras: bool = False, resolve_generics: bool = False) -> dict[str, Any]:
        bindings = _type_bindings(self.annotation)
        return {name: _bind(hint, bindings)
                for name, hint in get_type_hints(self.annotation, include_extras=include_extras).items()}


@dataclass
class OptionalBodyOperation(Operation):
    """An operation whose body may be left out; a body that is sent must be the object, never `null`."""

    def __post_init__(self) -> None:
        if not isinstance(self.request_body, RequestBody):
            return
        self.request_body.required = False
        for media in (self.request_body.content or {}).values():
            schema = media.schema
            if isinstance(schema, Schema) and schema.one_of:
                kept = [s for s in schema.one_of if not (isinstance(s, Schema) and s.type == OpenAPIType.NULL)]
                media.schema = kept[0] if len(kept) == 1 else Schema(one_of=kept)


def with_request_body(request_body: dict[str, Any]) -> type[Operation]:
    """An `operation_class` documenting `request_body` (an OpenAPI Request Body Object) for a handler that reads
    its body raw, e.g. in more than one media type."""

    class RawBodyOperation(Operation):
        def to_schema(self) -> dict[str, Any]:
            schema = super().to_schema()
            schema["requestBody"] = request_body
            return schema

    return RawBodyOperation


def inline_schema(wire_type: Any, *, form: bool = False) -> dict[str, Any]:
    """The JSON Schema of a msgspec type with every `$ref` inlined (so it can sit anywhere in the document).

    `form=True` describes it as `application/x-www-form-urlencoded` fields: text values, no nulls, and other
    parameters allowed (RFC 6749 §3.2 has unrecognised parameters ignored)."""
    document = msgspec.json.schema(wire_type)
    definitions = document.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return resolve(definitions[node["$ref"].rsplit("/", 1)[1]])
        resolved = {key: resolve(value) for key, value in node.items() if key != "discriminator"}
        if form:
            resolved.pop("additionalProperties", None)
            if resolved.get("default", ...) is None:
                del resolved["default"]
            options = resolved.get("anyOf")
            if isinstance(options, list) and {"type": "null"} in options and len(options) == 2:
                resolved.pop("anyOf")
                resolved.update(next(option for option in options if option != {"type": "null"}))
        return resolved

    result: dict[str, Any] = resolve(document)
    return result
