"""Hook specifications: the whole contract between the platform and its plugins.

Hooks are called with keyword arguments only; an implementation may accept any subset of a
hook's parameters, declared as ordinary (not keyword-only) parameters, as pluggy requires.
"Who decides" hooks are ``firstresult``: the first non-None answer wins, built-in defaults are registered ``trylast`` so any active plugin overrides them, and
the platform allows only one non-default plugin of an exclusive family per jurisdiction node.
Every answer is checked against its hook's contract (:mod:`odr_plugin_api.contracts`, declared next to
these specifications); a plugin that raises, or whose answer breaks the contract, is skipped for that
call (the next implementation, ultimately the default, answers) and the failure is recorded and shown
to the bureau; it never takes the platform down.
"""

from __future__ import annotations

import datetime as dt

from odr_plugin_api.channels import ChannelMessage, ChannelReceipt
from odr_plugin_api.markers import hookspec
from odr_plugin_api.net import Network
from odr_plugin_api.types import (
    ClassificationResult,
    DayInfo,
    DeadlinePlan,
    DeadlineRequest,
    EnterpriseFacts,
    Indicators,
    PluginInfo,
    Scope,
    ScoreResult,
)


@hookspec
def odr_plugin_info() -> PluginInfo:
    """Describe the plugin: name (equal to its entry-point name), version, title, the families it
    implements, its configuration Struct type (every field defaulted) and whether it is a built-in
    default. Called once when the plugin is registered; a plugin without it is refused. Mark
    credentials in the configuration Struct with :data:`odr_plugin_api.Secret`: write-only, shown
    only as set (``SECRET_MASK``) or empty, kept when a save leaves them out (:mod:`odr_plugin_api.secrets`)."""


@hookspec(firstresult=True)
def odr_calendar_day(scope: Scope, day: dt.date) -> DayInfo | None:
    """Working-day calendar (family ``calendar``). Return a :class:`DayInfo` for ``day`` in ``scope``,
    or None to let the next calendar answer. Layered: a regional plugin answers only for the days it
    changes (e.g. a local statutory holiday) and returns None otherwise; the built-in mainland China
    calendar (holidays and make-up working days per the State Council notice) answers last. A calendar
    that knows a year's published arrangement answers with ``provisional`` False; one that answers
    from the law's fixed rules only (the notice not out yet) sets it True."""


@hookspec(firstresult=True)
def odr_deadline_policy(scope: Scope, request: DeadlineRequest) -> DeadlinePlan | None:
    """Deadline policy (family ``deadline_policy``, exclusive). Return the :class:`DeadlinePlan` for a
    complaint entering ODR at ``request.start`` in ``scope``: days to contact the consumer and days to
    settle/close, each with its clock (working or natural days) and whether a natural-day period
    ending on a holiday rolls over. The platform does the counting. Default: national 2018 measures,
    3 working days to contact (Art. 12), 10 working days to settle (Art. 13)."""


@hookspec(firstresult=True)
def odr_classify_enterprise(scope: Scope, facts: EnterpriseFacts) -> ClassificationResult | None:
    """Classification scheme (family ``classification``, exclusive). Sort an ODR unit into one of the
    scheme's declared classes, with the duties that class carries. Must be deterministic."""


@hookspec(firstresult=True)
def odr_score_enterprise(scope: Scope, indicators: Indicators) -> ScoreResult | None:
    """Scoring formula (family ``scoring``, exclusive; Art. 20). Score one ODR unit from its period
    indicators; the score must lie in 0..100 and be deterministic for the same inputs and config."""


@hookspec(firstresult=True)
def odr_check_enterprise_standing(scope: Scope, credit_code: str) -> dict | None:
    """Standing check before approval (family ``standing_check``, exclusive; Art. 9): whether the
    company is on the abnormal-operations list or a blacklist. Return
    ``{"status": "clear" | "listed" | "unknown", "detail": str, "source": str}``."""


@hookspec
def odr_notify(scope: Scope, kind: str, recipients: list[str], payload: dict, net: Network) -> None:
    """Notification (family ``notification``): deliver a notice (deadline warning, breach, new case)
    to the given principal ids. All active implementations are called; personal data of consumers
    must not be put in ``payload`` by the platform, and plugins must not log it. A plugin that reaches
    the network does so through ``net`` (:class:`~odr_plugin_api.net.Network`, the platform's checked
    client), as channels do."""


@hookspec(firstresult=True)
def odr_channel_send(scope: Scope, message: ChannelMessage, net: Network) -> ChannelReceipt | None:
    """Delivery channel (family ``channel``; e-mail, webhook, SMS gateway): send one queued
    :class:`ChannelMessage` with this plugin's configuration for ``scope`` and return a
    :class:`ChannelReceipt` once the receiver accepted it. Called from a delivery worker, never in a
    request, and only on the one channel the delivery belongs to. Raise (preferably
    :class:`DeliveryFailed` with a reason free of personal data) to have it retried with back-off;
    after the configured number of attempts it is dead-lettered for the bureau. Deliveries are
    at-least-once: pass ``message.idempotency_key`` on so the receiver can deduplicate. Must not log
    ``message.address``. Every connection goes through ``net`` (:class:`~odr_plugin_api.net.Network`,
    the platform's checked client: ``net.request`` for HTTP(S), ``net.connect`` for a TCP socket),
    never a socket or URL opener of the plugin's own; let its
    :class:`~odr_plugin_api.net.DestinationRefused` propagate."""
