"""Per-address and per-province rate limits of the anonymous doors that cost a password hash: login
and consumer sign-up, in the API and the console alike (Litestar's rate-limit middleware, store
``rate_limit``: Valkey when configured, so every web process counts together).

Contract: :func:`login_limit` limits ``ODR_LOGIN_RATE_PER_MINUTE`` login attempts per client address;
:func:`signup_limits` limits sign-ups to ``ODR_SIGNUP_RATE_PER_MINUTE`` per client address and
``ODR_SIGNUP_RATE_PER_PROVINCE_PER_MINUTE`` per province (the ``tenant`` path parameter), whatever the
addresses. Each applies only to the requests ``applies`` says are its own (a POST to that door); beyond
it, 429 with ``Retry-After``. A limit of 0 is no limit. Each limit counts under its own key, so a
sign-up never uses up a login's budget.
"""

from __future__ import annotations

from typing import Callable

from litestar import Request
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig, get_remote_address

from core.settings import Settings

STORE = "rate_limit"


def _limit(per_minute: int, applies: Callable[[Request], bool], identifier: Callable[[Request], str]) -> list[DefineMiddleware]:
    if per_minute <= 0:
        return []
    return [RateLimitConfig(rate_limit=("minute", per_minute), check_throttle_handler=applies,
                            identifier_for_request=identifier, store=STORE).middleware]


def login_limit(settings: Settings, applies: Callable[[Request], bool]) -> list[DefineMiddleware]:
    """Login attempts per client address (the key is the address alone, as it always was)."""
    return _limit(settings.login_rate_per_minute, applies, get_remote_address)


def signup_limits(settings: Settings, applies: Callable[[Request], bool]) -> list[DefineMiddleware]:
    """Sign-ups per client address and per province."""
    return [
        *_limit(settings.signup_rate_per_minute, applies, lambda r: f"signup:address:{get_remote_address(r)}"),
        *_limit(settings.signup_rate_per_province_per_minute, applies,
                lambda r: f"signup:province:{r.path_params.get('tenant', '')}"),
    ]
