"""HTTP of the accounts domain: one-time codes, the OAuth 2.0 token and revocation endpoints, pushed
authorization requests, the public keys and the authorization server metadata (auth.py, with the OAuth wire
parsing in oauth.py), and the citizen's own account (me.py)."""

from litestar import Router

from api.routes.accounts.auth import AuthController, OAuthController, authorization_server_metadata, jwks
from api.routes.accounts.me import MeController

router = Router(path="/", route_handlers=[AuthController, OAuthController, jwks, authorization_server_metadata,
                                          MeController])
