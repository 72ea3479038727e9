"""The baseline for benchmarks: a bare Litestar "hello" endpoint, served exactly like the real app."""

from __future__ import annotations

from litestar import Litestar, get


@get("/hello", sync_to_thread=False)
def hello() -> dict[str, str]:
    return {"hello": "world"}


def create_hello_app() -> Litestar:
    return Litestar(route_handlers=[hello], openapi_config=None)
