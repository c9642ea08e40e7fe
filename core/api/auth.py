"""Login and the current principal."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar.params import JSONBody
from litestar import Controller, Request, get, post
from litestar.exceptions import NotAuthorizedException

from core.api.access import platform_of
from core.auth.accounts import authenticate, principal_from_row
from core.auth.lockout import LoginLockout
from core.auth.principal import Principal


class Login(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(max_length=200)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


class LoginResponse(msgspec.Struct, kw_only=True):
    token: str
    token_type: str = "Bearer"
    principal: Principal


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post("/login", exclude_from_auth=True, status_code=200)
    async def login(self, request: Request, data: JSONBody[Login]) -> LoginResponse:
        """Exchange username and password for a bearer token (JWT). The attempt is counted against the
        account before the password is checked (:mod:`core.auth.lockout`); 429 while it is locked, 503
        with ``Retry-After`` while too many passwords are being checked (:mod:`core.auth.passwords`)."""
        platform = platform_of(request)
        lockout: LoginLockout = request.app.state.login_lockout
        attempt = await lockout.reserve(data.username)
        try:
            row = await authenticate(data.username, data.password)
        except BaseException:
            await lockout.release(attempt)  # no password was checked: nothing is counted
            raise
        if row is None:
            await lockout.failed(attempt)
            raise NotAuthorizedException("username or password is wrong")
        await lockout.succeeded(attempt)
        node_path: tuple[str, ...] = ()
        if row["tenant"] and row["node_code"]:
            node_path = (await platform.node(row["tenant"], row["node_code"])).path
        principal = principal_from_row(row, node_path)
        token = request.app.state.jwt_auth.create_token(
            identifier=principal.id, token_extras={"p": msgspec.to_builtins(principal)}
        )
        return LoginResponse(token=token, principal=principal)

    @get("/me")
    async def me(self, request: Request[Principal, Any, Any]) -> Principal:
        """The authenticated principal."""
        return request.user
