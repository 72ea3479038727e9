"""HTTP for every domain, one Litestar `Router` per domain (`api/routes/<domain>/`): the domains keep services
and wire types and no HTTP objects; these modules turn requests into service calls and nothing more."""
