"""HTTP of every domain: one Litestar `Router` per domain in a package of its own (api/routes/<domain>/),
composed by the app factory. The domains keep the services; the routes here only translate."""
