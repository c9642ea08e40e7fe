"""Provisional deadlines: recounted once when the calendar learns the year's holiday notice.

Contract:

- A complaint's deadlines are *provisional* when their counting touched a day the calendar answered
  with ``DayInfo.provisional`` (a year whose State Council notice was not known yet); the stored
  explanation says so (``ComplaintDeadlines.provisional``, ``PeriodExplanation.provisional_days``) and
  every view shows it (``ComplaintView.deadlines_provisional``).
- :func:`recompute_provisional` looks at the tenant's complaints still in ODR whose stored deadlines
  are provisional, and picks those for which the calendar active at their node now answers every
  provisional day of some year without ``provisional``: it covers that year (a newer
  ``chinese-calendar``, a vendor calendar with the notice). A regional calendar that answers a few
  days only (a local holiday) does not make a year covered. Each picked complaint's periods are counted again with exactly the stored
  plan (policy, version, days, clock, rollover, start): only the calendar changed, so nothing else is
  recomputed. Nothing else is touched: complaints without provisional deadlines, closed ones, and
  provisional ones whose days the calendar still answers provisionally.
- Applying (``apply=True``) writes, per picked complaint and in one tenant transaction: the new due
  moments and explanation, re-scheduled clocks (a milestone already met keeps its clocks cancelled), a
  ``deadlines_provisional_recomputed`` event (before / after: due moments and the provisional flag;
  note: why), and, when a due moment moved, a ``deadlines_changed`` notification to the enterprise, the
  consumer and the complaint's node (pushed after commit by the caller, from ``outbox``). The recount
  of an applied complaint no longer finds a provisional day the calendar knows, so running it again
  changes nothing ("once"). Concurrent runs (several web workers starting) are serialised by a
  transaction-level advisory lock. Without ``apply`` nothing is written (what would change).
- :func:`recompute_on_start` applies it for every active tenant when the platform starts; a failing
  tenant is logged (by exception type, nothing personal) and skipped.
"""

from __future__ import annotations

import datetime as dt
import logging

import msgspec

from core.complaints import states as S
from core.db.engine import shared_fetch, tenant_transaction
from core.deadlines.counting import PeriodExplanation, count_period
from core.deadlines.service import ComplaintDeadlines, calendar_for
from core.notifications.deliver import Outgoing, deliver, record
from core.runtime import Platform
from core.timers.schedule import schedule_complaint_clocks

log = logging.getLogger(__name__)
EVENT = "deadlines_provisional_recomputed"
NOTICE = "deadlines_changed"
SYSTEM_ACTOR = "system"
_LOCK = "odr:provisional-deadlines"


class DueState(msgspec.Struct, kw_only=True):
    contact_due: dt.datetime
    close_due: dt.datetime
    provisional: bool


class ProvisionalChange(msgspec.Struct, kw_only=True):
    complaint_id: str
    number: str
    state: str
    node_code: str
    before: DueState
    after: DueState
    due_changed: bool
    """A due moment moved (else only the provisional mark goes, or narrows to later years)."""
    resolved_days: list[dt.date]
    """The provisional days the calendar now answers from a published arrangement."""
    sources: list[str]
    """The calendar plugins that answered those days."""
    reason: str
    applied: bool


class ProvisionalResult(msgspec.Struct, kw_only=True):
    tenant: str
    apply: bool
    examined: int
    """Complaints in ODR with provisional deadlines."""
    changed: int
    changes: list[ProvisionalChange]


def _recount(p: PeriodExplanation, day_info) -> PeriodExplanation:
    """``p`` counted again on ``day_info`` with its own plan and start."""
    return count_period(start=p.start, days=p.days, clock=p.clock, day_info=day_info,
                        holiday_rollover=p.holiday_rollover, milestone=p.milestone, policy=p.policy,
                        policy_version=p.policy_version, legal_basis=p.legal_basis)


def _covered_years(answers) -> set[int]:
    """The years whose every looked-at day the calendar now answers without ``provisional``: it has
    that year's notice. (A regional calendar answering a single day of the year, e.g. a local holiday,
    does not count: the State Council notice is still unknown.)"""
    years: dict[int, bool] = {}
    for day, info in answers:
        years[day.year] = years.get(day.year, True) and not info.provisional
    return {year for year, known in years.items() if known}


def _reason(resolved: list[dt.date], sources: list[str], d: ComplaintDeadlines, still: bool) -> str:
    years = ", ".join(str(y) for y in sorted({day.year for day in resolved}))
    text = (f"the calendar ({', '.join(sources)}) now has the holiday notice for {years}: due moments recounted"
            f" with the same policy ({d.policy} {d.policy_version}) and start")
    if still:
        text += "; still provisional for the years whose notice is not out yet"
    return text


async def recompute_provisional(platform: Platform, tenant: str, *, apply: bool = False,
                                outbox: list[Outgoing] | None = None) -> ProvisionalResult:
    """What the current calendars change in the tenant's provisional deadlines; applied with
    ``apply`` (one tenant transaction; notifications appended to ``outbox``). See the module."""
    warning_before = dt.timedelta(hours=platform.settings.warning_before_hours)
    changes: list[ProvisionalChange] = []
    async with tenant_transaction(tenant) as conn:
        if apply:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{_LOCK}:{tenant}")
        rows = await conn.fetch(
            """SELECT id, number, state, node_code, deadlines, contacted_at, enterprise_id, consumer_account_id
               FROM complaints
               WHERE state = ANY($1) AND entered_odr_at IS NOT NULL AND deadlines IS NOT NULL
                 AND coalesce((deadlines->>'provisional')::boolean, false)
               ORDER BY entered_odr_at, id""" + (" FOR UPDATE" if apply else ""),
            sorted(S.IN_ODR),
        )
        for row in rows:
            old = msgspec.json.decode(row["deadlines"], type=ComplaintDeadlines)
            scope, active = await platform.scope(tenant, row["node_code"])
            day_info = calendar_for(platform, scope, active)
            looked_at = sorted(set(old.contact.provisional_days) | set(old.close.provisional_days))
            answers = [(day, day_info(day)) for day in looked_at]
            covered = _covered_years(answers)
            if not covered:
                continue  # no calendar knows those years' notice yet: nothing to recompute
            resolved = [day for day, _ in answers if day.year in covered]
            sources = sorted({info.source for day, info in answers if day.year in covered})
            contact, close = _recount(old.contact, day_info), _recount(old.close, day_info)
            new = ComplaintDeadlines(policy=old.policy, policy_version=old.policy_version, plugin=old.plugin,
                                     contact=contact, close=close, provisional=contact.provisional or close.provisional)
            before = DueState(contact_due=old.contact.due, close_due=old.close.due, provisional=True)
            after = DueState(contact_due=new.contact.due, close_due=new.close.due, provisional=new.provisional)
            moved = (before.contact_due, before.close_due) != (after.contact_due, after.close_due)
            change = ProvisionalChange(
                complaint_id=str(row["id"]), number=row["number"], state=row["state"], node_code=row["node_code"],
                before=before, after=after, due_changed=moved, resolved_days=resolved, sources=sources,
                reason=_reason(resolved, sources, new, new.provisional), applied=apply,
            )
            changes.append(change)
            if apply:
                await _apply(conn, platform, tenant, row, new, change, warning_before, outbox)
    return ProvisionalResult(tenant=tenant, apply=apply, examined=len(rows), changed=len(changes), changes=changes)


def _event_body(d: DueState) -> dict:
    return {"contact_due": d.contact_due.isoformat(), "close_due": d.close_due.isoformat(),
            "deadlines_provisional": d.provisional}


async def _apply(conn, platform: Platform, tenant: str, row, new: ComplaintDeadlines, change: ProvisionalChange,
                 warning_before: dt.timedelta, outbox: list[Outgoing] | None) -> None:
    await conn.execute(
        """UPDATE complaints SET contact_due = $2, close_due = $3, deadlines = $4, updated_at = now(),
               version = version + 1 WHERE id = $1""",
        row["id"], new.contact.due, new.close.due, msgspec.json.encode(new).decode(),
    )
    if change.due_changed:
        contacted = row["contacted_at"] is not None
        feedback_in = row["state"] == S.FEEDBACK_SUBMITTED
        await schedule_complaint_clocks(conn, row["id"], None if contacted else new.contact.due,
                                        None if feedback_in else new.close.due, warning_before)
    await conn.execute(
        """INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, node_code, before, after, note)
           VALUES ($1, $2, $3, $3, $4, $5, $6, $7)""",
        row["id"], EVENT, SYSTEM_ACTOR, row["node_code"],
        msgspec.json.encode(_event_body(change.before)).decode(),
        msgspec.json.encode(_event_body(change.after)).decode(),
        change.reason,
    )
    if not change.due_changed:
        return
    recipients = [f"node:{row['node_code']}"]
    if row["enterprise_id"] is not None:
        recipients.append(f"enterprise:{row['enterprise_id']}")
    if row["consumer_account_id"] is not None:
        recipients.append(f"account:{row['consumer_account_id']}")
    out = await record(
        conn, tenant=tenant, kind=NOTICE, recipients=recipients,
        payload={"complaint_number": row["number"], "state": row["state"],
                 "contact_due": change.after.contact_due.isoformat(), "close_due": change.after.close_due.isoformat()},
        node_code=row["node_code"], complaint_id=row["id"],
    )
    if outbox is not None:
        outbox.append(out)


async def active_tenants() -> list[str]:
    return [r["slug"] for r in await shared_fetch("SELECT slug FROM odr.tenants WHERE status = 'active' ORDER BY slug")]


async def recompute_on_start(platform: Platform, bus=None) -> list[ProvisionalResult]:
    """Apply :func:`recompute_provisional` in every active tenant, then deliver the notifications.
    Never raises: a tenant that fails is logged by exception type and left as it was."""
    results: list[ProvisionalResult] = []
    try:
        slugs = await active_tenants()
    except Exception as exc:
        log.error("provisional deadlines not recomputed: no tenant list (%s)", type(exc).__name__)
        return results
    for slug in slugs:
        outbox: list[Outgoing] = []
        try:
            result = await recompute_provisional(platform, slug, apply=True, outbox=outbox)
        except Exception as exc:
            log.error("provisional deadlines of tenant %s not recomputed (%s)", slug, type(exc).__name__)
            continue
        results.append(result)
        if result.changed:
            log.info("tenant %s: %d provisional deadline(s) recomputed with the holiday notice now known",
                     slug, result.changed)
        for out in outbox:
            await deliver(platform, bus, out)
    return results
