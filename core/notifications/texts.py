"""The words of an outgoing notification (e-mail subject and body, webhook text, SMS template
parameters), in Chinese and English.

Contract: texts are built from the notification's kind and its payload's complaint number, milestone
and due moment only. Payloads carry no consumer's personal data and neither do these texts: a message
never names the consumer, the phone or the address, whoever receives it (the recipient opens the case
in the platform with their own rights).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

SUBJECTS: dict[str, tuple[str, str]] = {
    "new_case": ("新投诉 {number}", "New case {number}"),
    "feedback_submitted": ("投诉 {number} 已有企业反馈", "Feedback on complaint {number}"),
    "case_closed": ("投诉 {number} 已办结", "Complaint {number} closed"),
    "feedback_found_untrue": ("抽查认定投诉 {number} 的反馈严重不实", "Feedback on complaint {number} found seriously untrue"),
    "deadline_warning": ("投诉 {number} 的{milestone_zh}期限即将到期", "Complaint {number}: {milestone} deadline due soon"),
    "deadline_breached": ("投诉 {number} 的{milestone_zh}期限已超时", "Complaint {number}: {milestone} deadline missed"),
    "liaison_overdue": ("联络员变更逾期未备案", "A liaison change is overdue"),
    "deadlines_changed": ("投诉 {number} 的时限已调整", "The deadlines of complaint {number} changed"),
    "case_events": ("案件事件 {count} 条", "{count} case events"),
}
MILESTONES: dict[str, tuple[str, str]] = {
    "contact": ("联系消费者", "contact"),
    "close": ("办结", "closing"),
    "liaison_filing": ("联络员变更备案", "liaison filing"),
}
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _due(raw: Any) -> str:
    if not isinstance(raw, str) or not raw:
        return ""
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(SHANGHAI)
    return moment.strftime("%Y-%m-%d %H:%M")


def params(kind: str, payload: dict[str, Any]) -> dict[str, str]:
    """Template parameters (strings) of a notification: ``number``, ``milestone``, ``due``, and for an
    events batch ``count``. Nothing else of the payload is used."""
    milestone = str(payload.get("milestone") or "")
    out = {
        "number": str(payload.get("complaint_number") or ""),
        "milestone": MILESTONES.get(milestone, ("", milestone))[1],
        "milestone_zh": MILESTONES.get(milestone, (milestone, ""))[0],
        "due": _due(payload.get("due")),
    }
    if kind == "case_events":
        out["count"] = str(len(payload.get("events") or ()))
    return out


def compose(kind: str, payload: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """``(subject, text, params)`` of a notification, bilingual (Chinese first)."""
    values = params(kind, payload)
    zh, en = SUBJECTS.get(kind, (kind, kind))
    subject_zh, subject_en = zh.format(**values), en.format(**values)
    lines = [f"【12315 ODR】{subject_zh}"]
    if values["due"]:
        lines.append(f"到期时间：{values['due']}（北京时间）")
    lines.append("请登录平台查看处理。")
    lines.append("")
    lines.append(f"[12315 ODR] {subject_en}")
    if values["due"]:
        lines.append(f"Due: {values['due']} (Beijing time)")
    lines.append("Please sign in to the platform to handle it.")
    return f"{subject_zh} / {subject_en}", "\n".join(lines), values
