"""Notification channels in the console: each user's own channel choices, and the bureau's list of
deliveries (the dead-letter list by default) with a retry button.

Contract:
- ``/ui/channels`` (any signed-in user of a tenant): every channel that needs an address (e-mail,
  SMS) with the user's choice; one form per channel, validated by the API's own function (a bad
  address answers 400 with the message next to the field).
- ``/ui/bureau/deliveries?state=dead|pending|delivered|skipped|all`` (bureau roles): the deliveries of
  the user's subtree, addresses masked (``DeliveryController.list_deliveries``); a dead-lettered one
  can be queued again (``DeliveryController.retry``).
"""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.params import FromPath

from admin_ui.forms import field_errors, read_form, to_struct
from admin_ui.pages.common import call_api
from admin_ui.render import page, redirect, require
from core.auth.principal import BUREAU_ROLES
from core.notifications.delivery_api import STATES, ChannelPreferenceController, DeliveryController
from core.notifications.preferences import ChoiceChange


async def _channels_page(request: Request, *, status: int = 200, errors: dict | None = None, failed: str | None = None,
                         form: dict | None = None) -> Response:
    principal = require(request)
    if principal.tenant is None:
        raise KeyError("channels belong to a province's accounts")
    choices = await call_api(ChannelPreferenceController.list_choices, request, tenant=principal.tenant)
    return page(request, "channels.html", status=status, choices=choices, errors=errors or {}, failed=failed,
                form=form or {})


@get("/channels")
async def channels(request: Request) -> Response:
    return await _channels_page(request)


@post("/channels/{channel:str}")
async def save_channel(request: Request, channel: FromPath[str]) -> Response:
    principal = require(request)
    data = await read_form(request)
    try:
        change = to_struct({"enabled": data.get("enabled", ""), "address": data.get("address", "")}, ChoiceChange,
                           checkboxes=("enabled",))
        await call_api(ChannelPreferenceController.save_choice, request, tenant=principal.tenant or "", channel=channel,
                       data=change)
    except (ValueError, TypeError) as exc:
        return await _channels_page(request, status=400, errors=field_errors(exc), failed=channel, form=data)
    return redirect("/ui/channels", done="common.saved")


@get("/bureau/deliveries")
async def deliveries(request: Request) -> Response:
    principal = require(request, BUREAU_ROLES)
    wanted = request.query_params.get("state", "dead")
    state = wanted if wanted in STATES else None
    rows = await call_api(DeliveryController.list_deliveries, request, tenant=principal.tenant or "",
                          node=principal.node or "", delivery_state=state, before_id=None, limit=200)
    return page(request, "deliveries.html", rows=rows, state_filter=state or "all", states=STATES)


@post("/bureau/deliveries/{delivery_id:int}/retry")
async def retry_delivery(request: Request, delivery_id: FromPath[int]) -> Response:
    principal = require(request, BUREAU_ROLES)
    await call_api(DeliveryController.retry, request, tenant=principal.tenant or "", node=principal.node or "",
                   delivery_id=delivery_id)
    return redirect("/ui/bureau/deliveries?state=dead", done="deliveries.requeued")


HANDLERS = [channels, save_channel, deliveries, retry_delivery]
