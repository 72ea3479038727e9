"""Request bodies are decoded in one place: from bytes straight to the type the operation declares, strictly.

Litestar's own path decodes a JSON body into plain Python first and then converts it to the handler's `data`
type with `strict=False`. That let `"900"` stand for 900, `"true"` and `0` for booleans and a `null` body for an
optional one, and the untyped first pass followed the body's nesting as deep as it went: a few KB of `[[[[…`
raised RecursionError, a 500 on every route. Here:

- `StrictBodyRequest` (the app's request class) decodes the body with msgspec against the handler's `data` type
  in strict mode; the signature model then receives a value of that type and passes it through unchanged. An
  optional body may be left out, but a body that is sent must be the object (`null` is refused).
- Typed decoding stops at the first value that does not fit the schema, so nesting deeper than the schema is a
  422 after reading no deeper than the schema. Only free-form members (a JWKS's key parameters) nest further, and
  msgspec refuses to go past the interpreter's recursion limit: that is a 400 `json_too_deep`. Either way the work
  is bounded by about a thousand levels, never by the size of the body, and the worker stays healthy.
- `decode_json` is the same decoding for a handler that reads its body raw (the NDJSON or array batches of
  `POST /v1/records/batch`).

The decoder of each operation is built as its route is registered (`StrictBodies`), so a `data` type msgspec
cannot decode fails at start-up, not on the first request; the published schema says the same (api.openapi).
"""

from __future__ import annotations

import functools
import operator
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.handlers import HTTPRouteHandler
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute

from api.openapi import OptionalBodyOperation
from core.errors import BodyTooDeep, InvalidBody, MalformedBody

T = TypeVar("T")

_DECODER_OPT = "body_decoder"
_ANY_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


def decode_json(raw: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """Decode `raw` with `decoder` (strict), turning every way it can fail into a 4xx problem.

    Raises:
        MalformedBody: 400 `malformed_json` — not JSON.
        BodyTooDeep: 400 `json_too_deep` — nested deeper than the parser goes.
        InvalidBody: 422 `validation_failed` — JSON, but not of the schema; `errors` names the field.
    """
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidBody("One or more fields are invalid.", errors=[_field_error(str(exc))]) from None
    except msgspec.DecodeError:
        raise MalformedBody("The request body could not be parsed as JSON.") from None
    except RecursionError:
        raise BodyTooDeep("The body is nested too deeply to be read.") from None


def _field_error(text: str) -> dict[str, str]:
    """msgspec's `Expected `int`, got `str` - at `$.rate_max_bp`` as {field: rate_max_bp, message: Expected …}.
    msgspec names the rule and the place, never the offending value."""
    message, separator, where = text.rpartition(" - at `")
    if not separator:
        return {"field": "body", "message": text}
    field = where.rstrip("`").removeprefix("$").removeprefix(".")
    return {"field": field or "body", "message": message}


def body_type(handler: HTTPRouteHandler) -> Any:
    """The type a body sent to `handler` must have (Any for a handler without a `data` parameter)."""
    field = handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return Any
    if field.is_optional:
        # The body may be left out (the parameter's default applies), but one that is sent is the object.
        members = [inner.annotation for inner in field.inner_types if not inner.is_none_type]
        return functools.reduce(operator.or_, members)
    return field.annotation


def body_decoder(handler: HTTPRouteHandler) -> msgspec.json.Decoder[Any]:
    decoder: msgspec.json.Decoder[Any] | None = handler.opt.get(_DECODER_OPT)
    if decoder is None:
        target = body_type(handler)
        decoder = _ANY_DECODER if target is Any else msgspec.json.Decoder(target, strict=True)
        handler.opt[_DECODER_OPT] = decoder
    return decoder


class StrictBodyRequest(Request[Any, Any, Any]):
    """The app's request class: `json()` (what Litestar reads a `data` parameter from) decodes the body
    against the handler's declared type, strictly."""

    async def json(self) -> Any:
        return decode_json(await self.body() or b"null", body_decoder(self.route_handler))


class StrictBodies(ReceiveRoutePlugin):
    """Builds each operation's body decoder as its route is registered, and publishes a body that may be left
    out as such."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            body_decoder(handler)
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is not None and data.is_optional:
                handler.operation_class = OptionalBodyOperation
