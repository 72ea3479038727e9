"""HTTP routes, one Litestar `Router` per domain (`api/routes/<domain>/`): the domains keep their services and
wire types, and only this layer knows requests, guards and status codes."""
