"""Login and the current principal."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.params import JSONBody
from litestar import Controller, Request, get, post
from litestar.exceptions import NotAuthorizedException

from core.api.access import platform_of
from core.auth.accounts import authenticate, principal_from_row
from core.auth.lockout import LoginLockout
from core.auth.principal import Principal
from core.db.engine import platform_transaction


class Login(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    username: str
    password: str


class LoginResponse(msgspec.Struct, kw_only=True):
    token: str
    token_type: str = "Bearer"
    principal: Principal


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post("/login", exclude_from_auth=True, status_code=200)
    async def login(self, request: Request, data: JSONBody[Login]) -> LoginResponse:
        """Exchange username and password for a bearer token (JWT)."""
        platform = platform_of(request)
        lockout: LoginLockout = request.app.state.login_lockout
        await lockout.check(data.username)
        async with platform_transaction() as conn:
            row = await authenticate(conn, data.username, data.password)
        if row is None:
            await lockout.failed(data.username)
            raise NotAuthorizedException("username or password is wrong")
        await lockout.succeeded(data.username)
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
