"""HTTP for authentication: one-time codes, the token endpoint, revocation and the public keys."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from api.auth import services
from api.auth.guards import app_context
from api.auth.schemas import (
    ClientCredentialsGrant,
    OtpGrant,
    OtpRequest,
    OtpSent,
    PasswordGrant,
    RefreshGrant,
    RevokeRequest,
    TokenRequest,
    TokenResponse,
)
from api.net import client_address

_NO_STORE = [ResponseHeader(name="Cache-Control", value="no-store"), ResponseHeader(name="Pragma", value="no-cache")]


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]

    @post("/otp", status_code=HTTP_202_ACCEPTED, summary="Send a login code by SMS")
    async def send_otp(self, request: Request[Any, Any, Any], data: JSONBody[OtpRequest]) -> OtpSent:
        issued = await services.request_otp(ctx=app_context(request), phone=data.phone,
                                            client_address=client_address(request))
        return OtpSent(expires_in=issued.expires_in, resend_after=issued.resend_after, dev_code=issued.dev_code)

    @post("/token", status_code=HTTP_200_OK, response_headers=_NO_STORE,
          summary="Issue tokens (grant_type otp, refresh_token, client_credentials, password)")
    async def token(self, request: Request[Any, Any, Any], data: JSONBody[TokenRequest]) -> TokenResponse:
        ctx = app_context(request)
        match data:
            case OtpGrant():
                issued = await services.login_with_otp(ctx=ctx, phone=data.phone, code=data.code)
            case RefreshGrant():
                issued = await services.refresh_session(ctx=ctx, refresh_token=data.refresh_token)
            case ClientCredentialsGrant():
                issued = await services.client_credentials(
                    ctx=ctx, client_id=data.client_id, client_secret=data.client_secret,
                    client_assertion_type=data.client_assertion_type, client_assertion=data.client_assertion,
                    scope=data.scope)
            case PasswordGrant():
                issued = await services.operator_login(ctx=ctx, username=data.username, password=data.password)
        return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope,
                             refresh_token=issued.refresh_token)

    @post("/revoke", status_code=HTTP_200_OK, summary="Revoke an access or refresh token (RFC 7009)")
    async def revoke(self, request: Request[Any, Any, Any], data: JSONBody[RevokeRequest]) -> dict[str, str]:
        await services.revoke_token(ctx=app_context(request), token=data.token)
        return {"status": "revoked"}


@get("/.well-known/jwks.json", tags=["auth"], summary="Public keys that verify this platform's tokens",
     cache=300)
async def jwks(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return app_context(request).tokens.jwks
