"""The HTTP routes, one Litestar `Router` per domain (`api.routes.<domain>`), composed by `api.app`."""
