"""ODR units end to end through the HTTP API on the real database: application (self and
recommended), review, specialists' accounts, documents, jurisdiction, liaison changes over a holiday,
suspension and revocation, the public directory and host units with member merchants."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from zoneinfo import ZoneInfo

import pytest

from core.db.engine import tenant_transaction
from core.enterprises.service import find_active_unit
from tests.conftest import login
from tests.sample_files import JPEG, PDF, PNG

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
TZ = ZoneInfo("Asia/Shanghai")
PIC_NAME, PIC_PHONE = "王负责人", "13800138000"
STAFF_NAME, STAFF_PHONE = "赵联络员", "021-57351234"


def credit_code() -> str:
    return "91" + "".join(secrets.choice(ALPHABET) for _ in range(16))


def application(code: str, **over) -> tuple[dict, dict]:
    """Form fields and files of a complete application for ``code`` in Jinshan."""
    low = code.lower()
    data = {
        "name": f"金山测试电商{code[-6:]}有限公司",
        "credit_code": code,
        "unit_type": "enterprise",
        "node_code": "310116",
        "industry": "e-commerce",
        "employees": "120",
        "annual_revenue_cny": "35000000",
        "business_scope": "网上零售 日用百货",
        "address": "上海市金山区朱泾镇某路88号",
        "fixed_place": "true",
        "staff_available": "true",
        "computer_online": "true",
        "dedicated_phone": "true",
        "written_procedure": "true",
        "person_in_charge_name": PIC_NAME,
        "person_in_charge_phone": PIC_PHONE,
        "person_in_charge_username": f"pic-{low}",
        "staff_name": STAFF_NAME,
        "staff_phone": STAFF_PHONE,
        "staff_username": f"staff-{low}",
    }
    files = {
        "application_letter": ("申请书.pdf", PDF, "application/pdf"),
        "commitment": ("承诺书.pdf", PDF, "application/pdf"),
        "business_licence": ("licence.png", PNG, "image/png"),
        "consumer_protection_statement": ("statement.jpg", JPEG, "image/jpeg"),
    }
    for key, value in over.items():
        target = files if key in files else data
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return data, files


async def apply(client, code: str, *, tenant: str = "shanghai", as_user: str | None = None, **over):
    data, files = application(code, **over)
    if as_user is None:
        return await client.post(f"/public/{tenant}/odr-applications", data=data, files=files)
    return await client.post(f"/api/tenants/{tenant}/odr-applications", data=data, files=files, headers=await login(client, as_user))


async def review(client, application_id: str, body: dict, user: str = "js-officer", tenant: str = "shanghai"):
    return await client.post(
        f"/api/tenants/{tenant}/odr-applications/{application_id}/review", json=body, headers=await login(client, user)
    )


async def approved_unit(client, **over) -> dict:
    """Apply (self) and approve; returns the ids, the code and the one-time credentials by role."""
    code = credit_code()
    r = await apply(client, code, **over)
    assert r.status_code == 201, r.text
    submitted = r.json()
    r = await review(client, submitted["application_id"], {"decision": "approve", "method": "written"})
    assert r.status_code == 200, r.text
    return {
        "code": code,
        "id": submitted["enterprise_id"],
        "application_id": submitted["application_id"],
        "outcome": r.json(),
        "credentials": {c["role"]: c for c in r.json()["initial_credentials"]},
    }


async def specialist_login(client, credential: dict):
    return await client.post("/api/auth/login", json={"username": credential["username"], "password": credential["password"]})


async def rows_for(code: str) -> dict[str, int]:
    async with tenant_transaction("shanghai") as conn:
        return {
            "enterprises": await conn.fetchval("SELECT count(*) FROM enterprises WHERE credit_code = $1", code),
            "applications": await conn.fetchval(
                "SELECT count(*) FROM enterprise_applications a JOIN enterprises e ON e.id = a.enterprise_id WHERE e.credit_code = $1", code
            ),
            "documents": await conn.fetchval(
                """SELECT count(*) FROM enterprise_documents d JOIN enterprise_applications a ON a.id = d.application_id
                   JOIN enterprises e ON e.id = a.enterprise_id WHERE e.credit_code = $1""",
                code,
            ),
            "liaisons": await conn.fetchval(
                "SELECT count(*) FROM liaisons l JOIN enterprises e ON e.id = l.enterprise_id WHERE e.credit_code = $1", code
            ),
        }


# -- application and review ---------------------------------------------------------------------------
async def test_self_application_is_reviewed_approved_and_specialists_log_in(client, demo):
    code = credit_code()
    r = await apply(client, code)
    assert r.status_code == 201, r.text
    app_id, eid = r.json()["application_id"], r.json()["enterprise_id"]
    assert await rows_for(code) == {"enterprises": 1, "applications": 1, "documents": 4, "liaisons": 2}

    officer = await login(client, "js-officer")
    listed = (await client.get("/api/tenants/shanghai/odr-applications?status=submitted", headers=officer)).json()
    assert app_id in [a["id"] for a in listed]
    detail = (await client.get(f"/api/tenants/shanghai/odr-applications/{app_id}", headers=officer)).json()
    assert detail["route"] == "self" and detail["status"] == "submitted" and detail["submitted_by"] == "public"
    assert all(detail["conditions"].values()) and len(detail["conditions"]) == 5
    assert {d["kind"]: d["content_type"] for d in detail["documents"]} == {
        "application_letter": "application/pdf",
        "commitment": "application/pdf",
        "business_licence": "image/png",
        "consumer_protection_statement": "image/jpeg",
    }
    assert {(l["role"], l["name"], l["phone"]) for l in detail["liaisons"]} == {
        ("person_in_charge", PIC_NAME, PIC_PHONE),
        ("staff", STAFF_NAME, STAFF_PHONE),
    }
    doc = await client.get(f"/api/tenants/shanghai/odr-applications/{app_id}/documents/business_licence", headers=officer)
    assert doc.status_code == 200 and doc.content == PNG and doc.headers["content-type"].startswith("image/png")
    assert "attachment" in doc.headers["content-disposition"]
    assert (await client.get(f"/api/tenants/shanghai/odr-applications/{app_id}/documents/passport", headers=officer)).status_code == 404

    r = await review(client, app_id, {"decision": "approve", "method": "written"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["standing"]["status"] == "unknown" and out["standing"]["source"] == "odr_builtin_standing"
    unit = out["unit"]
    assert unit["status"] == "active" and unit["approved_by"] == "js-officer@310116" and unit["approved_at"]
    # Jinshan classifies its units (demo manifest): 120 employees, 35 million yuan, a specialised scope
    assert unit["classification"]["scheme"] == "odr_jinshan_classification"
    assert unit["classification"]["code"] == "B" and unit["classification"]["duties"]
    creds = {c["role"]: c for c in out["initial_credentials"]}
    assert creds["person_in_charge"]["username"] == f"pic-{code.lower()}" and len(creds["staff"]["password"]) >= 12

    detail = (await client.get(f"/api/tenants/shanghai/odr-applications/{app_id}", headers=officer)).json()
    assert detail["status"] == "approved" and detail["review_method"] == "written" and detail["reviewer"] == "js-officer@310116"
    assert detail["standing"]["status"] == "unknown"
    assert all(l["has_account"] for l in detail["liaisons"])

    for role in ("person_in_charge", "staff"):
        r = await specialist_login(client, creds[role])
        assert r.status_code == 200, r.text
        principal = r.json()["principal"]
        assert principal["role"] == "enterprise_specialist" and principal["enterprise_id"] == eid and principal["tenant"] == "shanghai"
    token = (await specialist_login(client, creds["staff"])).json()["token"]
    mine = await client.get(f"/api/tenants/shanghai/odr-units/{eid}", headers={"Authorization": f"Bearer {token}"})
    assert mine.status_code == 200 and {l["name"] for l in mine.json()["liaisons"]} == {PIC_NAME, STAFF_NAME}
    # a specialist never downloads application documents, nor reviews
    assert (await client.get(f"/api/tenants/shanghai/odr-applications/{app_id}", headers={"Authorization": f"Bearer {token}"})).status_code == 404

    # reviewed once only; the same credit code cannot apply again while active
    assert (await review(client, app_id, {"decision": "reject", "method": "written", "reason": "x"})).status_code == 409
    r = await apply(client, code)
    assert r.status_code == 409 and r.json()["field"] == "credit_code"


async def test_recommended_application_by_the_district_bureau(client, demo):
    code = credit_code()
    assert (await apply(client, code, as_user="js-office-head")).status_code == 403  # an office does not recommend
    assert (await apply(client, code, as_user="pd-office-head")).status_code in (403, 404)
    r = await apply(client, code, as_user="js-officer")
    assert r.status_code == 201, r.text
    app_id = r.json()["application_id"]
    detail = (await client.get(f"/api/tenants/shanghai/odr-applications/{app_id}", headers=await login(client, "sh-admin"))).json()
    assert detail["route"] == "recommended" and detail["recommended_by"] == "310116" and detail["submitted_by"] == "js-officer"
    # the province admin covers Jinshan and may review; site inspection
    r = await review(client, app_id, {"decision": "approve", "method": "site_inspection"}, user="sh-admin")
    assert r.status_code == 200, r.text
    assert r.json()["unit"]["approved_by"] == "sh-admin@310000"
    assert (await specialist_login(client, r.json()["initial_credentials"][0])).status_code == 200


async def test_rejection_needs_a_reason_and_a_rejected_unit_may_apply_again(client, demo):
    code = credit_code()
    app_id = (await apply(client, code)).json()["application_id"]
    again = await apply(client, code)
    assert again.status_code == 409 and again.json()["field"] == "credit_code"
    for body in ({"decision": "reject", "method": "written"}, {"decision": "reject", "method": "written", "reason": "   "}):
        r = await review(client, app_id, body)
        assert r.status_code == 400 and r.json()["field"] == "reason", r.text
    r = await review(client, app_id, {"decision": "approve", "method": "by_telepathy"})
    assert r.status_code == 400 and r.json()["field"] == "method"
    r = await review(client, app_id, {"decision": "reject", "method": "comprehensive", "reason": "经营范围与日常消费无关"})
    assert r.status_code == 200, r.text
    assert r.json()["unit"]["status"] == "rejected" and r.json()["initial_credentials"] == []
    detail = (await client.get(f"/api/tenants/shanghai/odr-applications/{app_id}", headers=await login(client, "js-officer"))).json()
    assert detail["status"] == "rejected" and detail["rejection_reason"] == "经营范围与日常消费无关"
    async with tenant_transaction("shanghai") as conn:
        assert await conn.fetchval("SELECT count(*) FROM liaisons l JOIN enterprises e ON e.id = l.enterprise_id WHERE e.credit_code = $1 AND l.account_id IS NOT NULL", code) == 0
    # a rejected company may apply again; the unit row is reused
    r = await apply(client, code)
    assert r.status_code == 201 and r.json()["enterprise_id"] == detail["enterprise_id"]
    assert (await rows_for(code))["applications"] == 2


@pytest.mark.parametrize(
    "over, status, field",
    [
        ({"business_licence": ("big.pdf", PDF + b"0" * (5 * 1024 * 1024), "application/pdf")}, 413, "business_licence"),
        ({"commitment": ("commitment.pdf", b"MZ\x90\x00 not a pdf at all", "application/pdf")}, 400, "commitment"),
        ({"application_letter": ("empty.pdf", b"", "application/pdf")}, 400, "application_letter"),
        ({"consumer_protection_statement": None}, 400, "consumer_protection_statement"),
        ({"staff_phone": None}, 400, "staff_phone"),
        ({"name": None}, 400, "name"),
        ({"fixed_place": "false"}, 400, "fixed_place"),
        ({"unit_type": "pirate_ship"}, 400, "unit_type"),
        ({"employees": "many"}, 400, "employees"),
        ({"person_in_charge_phone": "call me maybe"}, 400, "person_in_charge_phone"),
        ({"node_code": "310116-01"}, 400, "node_code"),
        ({"node_code": "320205"}, 400, "node_code"),
        ({"staff_username": "SAME"}, 400, "staff_username"),
        ({"host_unit_id": "7d4cf0f5-8a40-4c4e-9d9b-3b9f4a0a8c11"}, 400, "host_unit_id"),
    ],
)
async def test_bad_applications_name_the_field_and_leave_no_rows(client, demo, over, status, field):
    code = credit_code()
    if over.get("staff_username") == "SAME":
        over = {"staff_username": f"pic-{code.lower()}"}
    r = await apply(client, code, **over)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field, r.json()
    assert field in r.json()["detail"]
    assert await rows_for(code) == {"enterprises": 0, "applications": 0, "documents": 0, "liaisons": 0}


async def test_bad_credit_code_and_taken_username(client, demo):
    r = await apply(client, "91310116MA1IO0000X")  # I and O are not in the code alphabet
    assert r.status_code == 400 and r.json()["field"] == "credit_code"
    r = await apply(client, credit_code(), person_in_charge_username="js-officer")
    assert r.status_code == 409 and r.json()["field"] == "person_in_charge_username"
    assert (await client.post("/public/nosuch/odr-applications", data=application(credit_code())[0], files=application(credit_code())[1])).status_code == 404


async def test_other_jurisdictions_and_tenants_cannot_see_or_review(client, demo):
    code = credit_code()
    app_id = (await apply(client, code)).json()["application_id"]
    base = f"/api/tenants/shanghai/odr-applications/{app_id}"
    approve = {"decision": "approve", "method": "written"}
    for user in ("pd-office-head", "js-office-head", "sh-consumer"):
        h = await login(client, user)
        assert (await client.get(base, headers=h)).status_code == 404, user
        assert (await client.get(f"{base}/documents/application_letter", headers=h)).status_code == 404, user
        assert (await client.post(f"{base}/review", json=approve, headers=h)).status_code == 404, user
    for user in ("xs-office-head", "wx-officer", "js-province-admin", "fj-admin"):
        h = await login(client, user)
        for r in (await client.get(base, headers=h), await client.post(f"{base}/review", json=approve, headers=h)):
            assert r.status_code == 404 and r.json()["detail"] == "tenant not found", user
        # nor under their own tenant's path
        own = "jiangsu" if user != "fj-admin" else "fujian"
        r = await client.get(f"/api/tenants/{own}/odr-applications/{app_id}", headers=h)
        assert r.status_code in (403, 404), user
        if user in ("wx-officer", "js-province-admin"):
            listed = await client.get(f"/api/tenants/{own}/odr-applications", headers=h)
            assert listed.status_code == 200 and app_id not in [a["id"] for a in listed.json()]
    assert (await client.get(base)).status_code == 401
    # Pudong's officer view: the Jinshan application is not in Pudong's list
    listed = await client.get("/api/tenants/shanghai/odr-applications?node=310115", headers=await login(client, "sh-admin"))
    assert app_id not in [a["id"] for a in listed.json()]
    r = await client.get("/api/tenants/shanghai/odr-applications?node=310115", headers=await login(client, "js-officer"))
    assert r.status_code == 404
    # still untouched
    r = await client.get(base, headers=await login(client, "js-officer"))
    assert r.json()["status"] == "submitted"


# -- liaisons (Art. 15) -------------------------------------------------------------------------------
async def test_liaison_change_is_due_in_five_working_days_over_national_day(client, demo):
    unit = await approved_unit(client)
    token = (await specialist_login(client, unit["credentials"]["person_in_charge"])).json()["token"]
    spec = {"Authorization": f"Bearer {token}"}
    r = await client.post(
        f"/api/tenants/shanghai/odr-units/{unit['id']}/liaison-changes", json={"role": "staff", "changed_on": "2026-09-30"}, headers=spec
    )
    assert r.status_code == 201, r.text
    change = r.json()
    # Wed 30 Sep not counted; 1-7 Oct National Day; Thu 8, Fri 9, Sat 10 (make-up working day), Mon 12, Tue 13
    assert dt.datetime.fromisoformat(change["due_at"]) == dt.datetime(2026, 10, 13, 23, 59, 59, tzinfo=TZ)
    explanation = change["deadline_explanation"]
    assert explanation["counted_days"] == ["2026-10-08", "2026-10-09", "2026-10-10", "2026-10-12", "2026-10-13"]
    assert [s["day"] for s in explanation["skipped"]] == [f"2026-10-0{d}" for d in range(1, 8)] + ["2026-10-11"]
    assert explanation["start_day_not_counted"] == "2026-09-30"
    async with tenant_transaction("shanghai") as conn:
        timer = await conn.fetchrow("SELECT kind, due_at FROM timers WHERE liaison_change_id = $1", uuid.UUID(change["id"]))
        stored = await conn.fetchval("SELECT deadline_explanation->>'due' FROM liaison_changes WHERE id = $1", uuid.UUID(change["id"]))
    assert timer["kind"] == "liaison_breach" and timer["due_at"] == dt.datetime(2026, 10, 13, 23, 59, 59, tzinfo=TZ)
    assert stored.startswith("2026-10-13T23:59:59")
    # one open change per role
    again = await client.post(f"/api/tenants/shanghai/odr-units/{unit['id']}/liaison-changes", json={"role": "staff"}, headers=spec)
    assert again.status_code == 409 and again.json()["field"] == "role"
    # the bureau sees the obligation (without personal data)
    r = await client.get("/api/tenants/shanghai/liaison-changes", headers=await login(client, "js-officer"))
    mine = [c for c in r.json() if c["id"] == change["id"]]
    assert len(mine) == 1 and STAFF_NAME not in r.text and STAFF_PHONE not in r.text
    future = (dt.datetime.now(TZ).date() + dt.timedelta(days=3)).isoformat()
    r = await client.post(
        f"/api/tenants/shanghai/odr-units/{unit['id']}/liaison-changes", json={"role": "person_in_charge", "changed_on": future}, headers=spec
    )
    assert r.status_code == 400 and r.json()["field"] == "changed_on"


async def test_filing_the_new_liaison_closes_the_obligation_and_cancels_its_timer(client, demo):
    unit = await approved_unit(client)
    officer = await login(client, "js-officer")
    base = f"/api/tenants/shanghai/odr-units/{unit['id']}"
    r = await client.post(f"{base}/liaison-changes", json={"role": "staff"}, headers=officer)  # the reviewing bureau may open it
    assert r.status_code == 201, r.text
    change_id = r.json()["id"]
    assert r.json()["changed_on"] == dt.datetime.now(TZ).date().isoformat()
    assert dt.datetime.fromisoformat(r.json()["due_at"]) > dt.datetime.now(TZ)
    # another unit's specialist and another district cannot touch it
    other = await approved_unit(client)
    other_token = (await specialist_login(client, other["credentials"]["staff"])).json()["token"]
    filing = {"name": "钱新联络员", "phone": "13700001111"}
    r = await client.post(f"{base}/liaison-changes/{change_id}/filing", json=filing, headers={"Authorization": f"Bearer {other_token}"})
    assert r.status_code == 404
    r = await client.post(f"{base}/liaison-changes/{change_id}/filing", json=filing, headers=await login(client, "pd-office-head"))
    assert r.status_code == 404
    r = await client.post(f"{base}/liaison-changes/{change_id}/filing", json={"name": "钱新联络员"}, headers=officer)
    assert r.status_code == 400 and r.json()["field"] == "phone"

    token = (await specialist_login(client, unit["credentials"]["staff"])).json()["token"]
    r = await client.post(f"{base}/liaison-changes/{change_id}/filing", json=filing, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["change"]["status"] == "filed" and r.json()["liaison"]["name"] == "钱新联络员"
    assert r.json()["liaison"]["has_account"] is True  # the role's account carries over
    async with tenant_transaction("shanghai") as conn:
        timer = await conn.fetchrow("SELECT cancelled_at, fired_at FROM timers WHERE liaison_change_id = $1", uuid.UUID(change_id))
        rows = await conn.fetch(
            "SELECT name, active FROM liaisons WHERE enterprise_id = $1 AND role = 'staff' ORDER BY filed_at", uuid.UUID(unit["id"])
        )
    assert timer["cancelled_at"] is not None and timer["fired_at"] is None
    assert [(x["name"], x["active"]) for x in rows] == [(STAFF_NAME, False), ("钱新联络员", True)]
    detail = (await client.get(base, headers=officer)).json()
    assert {l["name"] for l in detail["liaisons"]} == {PIC_NAME, "钱新联络员"} and detail["open_liaison_changes"] == []
    open_ids = [c["id"] for c in (await client.get("/api/tenants/shanghai/liaison-changes", headers=officer)).json()]
    assert change_id not in open_ids
    again = await client.post(f"{base}/liaison-changes/{change_id}/filing", json=filing, headers=officer)
    assert again.status_code == 409

    # a change with a new account: the predecessor's account closes, the new one logs in
    r = await client.post(f"{base}/liaison-changes", json={"role": "person_in_charge"}, headers=officer)
    new_user = f"newpic-{unit['code'].lower()}"
    r = await client.post(
        f"{base}/liaison-changes/{r.json()['id']}/filing", json={"name": "孙新负责人", "phone": "13600002222", "username": new_user}, headers=officer
    )
    assert r.status_code == 200, r.text
    cred = r.json()["initial_credentials"][0]
    assert cred["username"] == new_user
    assert (await specialist_login(client, cred)).status_code == 200
    assert (await specialist_login(client, unit["credentials"]["person_in_charge"])).status_code == 401


# -- status (Art. 22) ---------------------------------------------------------------------------------
async def test_revocation_needs_a_ground_and_closes_the_accounts(client, demo):
    unit = await approved_unit(client)
    officer = await login(client, "js-officer")
    url = f"/api/tenants/shanghai/odr-units/{unit['id']}/revocation"
    for body in (None, {}, {"ground": "bad_vibes"}, {"detail": "没有理由"}):
        r = await client.post(url, json=body, headers=officer) if body is not None else await client.post(url, headers=officer)
        assert r.status_code == 400 and r.json()["field"] == "ground", r.text
    assert (await client.post(url, json={"ground": "untrue_feedback"}, headers=await login(client, "pd-office-head"))).status_code == 404
    assert (await client.post(url, json={"ground": "untrue_feedback"}, headers=await login(client, "wx-officer"))).status_code == 404
    for role in ("person_in_charge", "staff"):
        assert (await specialist_login(client, unit["credentials"][role])).status_code == 200

    r = await client.post(url, json={"ground": "untrue_feedback", "detail": "反馈处理结果严重不实"}, headers=officer)
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["status"] == "revoked" and u["revocation_ground"] == "untrue_feedback" and u["revocation_detail"] == "反馈处理结果严重不实"
    assert u["status_changed_by"] == "js-officer@310116" and u["deciding_bureau"] == "310116"
    for role in ("person_in_charge", "staff"):
        assert (await specialist_login(client, unit["credentials"][role])).status_code == 401
    async with tenant_transaction("shanghai") as conn:
        assert await conn.fetchval("SELECT status FROM enterprises WHERE id = $1", uuid.UUID(unit["id"])) == "revoked"
    from core.db.engine import platform_transaction

    async with platform_transaction() as conn:
        actives = await conn.fetch("SELECT active FROM odr.accounts WHERE enterprise_id = $1", uuid.UUID(unit["id"]))
    assert len(actives) == 2 and not any(a["active"] for a in actives)
    assert (await client.post(url, json={"ground": "other_failure"}, headers=officer)).status_code == 409
    directory = (await client.get("/public/shanghai/odr-units?node=310116")).json()
    assert unit["code"] not in [d["credit_code"] for d in directory]


async def test_suspension_closes_and_reinstatement_reopens_the_accounts(client, demo):
    unit = await approved_unit(client)
    officer = await login(client, "js-officer")
    base = f"/api/tenants/shanghai/odr-units/{unit['id']}"
    r = await client.post(f"{base}/suspension", json={}, headers=officer)
    assert r.status_code == 400 and r.json()["field"] == "ground"
    r = await client.post(f"{base}/suspension", json={"ground": "deliberate_delay_or_refusal"}, headers=officer)
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    assert (await specialist_login(client, unit["credentials"]["staff"])).status_code == 401
    assert unit["code"] not in [d["credit_code"] for d in (await client.get("/public/shanghai/odr-units")).json()]
    assert (await client.post(f"{base}/suspension", json={"ground": "other_failure"}, headers=officer)).status_code == 409
    r = await client.post(f"{base}/reinstatement", headers=await login(client, "sh-admin"))
    assert r.status_code == 200 and r.json()["status"] == "active" and r.json()["revocation_ground"] is None
    assert (await specialist_login(client, unit["credentials"]["staff"])).status_code == 200
    assert (await client.post(f"{base}/reinstatement", headers=officer)).status_code == 409


# -- public directory (Art. 23) and host units (Art. 25) ------------------------------------------------
async def test_public_directory_lists_active_units_only_without_personal_data(client, demo):
    active = await approved_unit(client)
    applying_code = credit_code()
    assert (await apply(client, applying_code)).status_code == 201
    r = await client.get("/public/shanghai/odr-units?node=310116")
    assert r.status_code == 200
    codes = [d["credit_code"] for d in r.json()]
    assert active["code"] in codes and applying_code not in codes
    entry = next(d for d in r.json() if d["credit_code"] == active["code"])
    assert entry["district"] == "金山区市场监督管理局" and entry["unit_type"] == "enterprise" and entry["node_code"] == "310116"
    assert set(entry) == {"id", "name", "credit_code", "unit_type", "node_code", "district", "classification", "members", "approved_on"}
    for secret in (PIC_NAME, PIC_PHONE, STAFF_NAME, STAFF_PHONE, "phone", "username", "pic-"):
        assert secret not in r.text
    # search by name and by credit code, by node, by class
    r = await client.get("/public/shanghai/odr-units", params={"q": entry["name"][-10:]})
    assert [d["credit_code"] for d in r.json()] == [active["code"]]
    r = await client.get("/public/shanghai/odr-units", params={"q": active["code"].lower()})
    assert [d["credit_code"] for d in r.json()] == [active["code"]]
    assert active["code"] not in [d["credit_code"] for d in (await client.get("/public/shanghai/odr-units?node=310115")).json()]
    assert (await client.get("/public/shanghai/odr-units", params={"class": "no-such-class"})).json() == []
    assert (await client.get("/public/shanghai/odr-units", params={"q": "%"})).json() == []  # no wildcard injection
    assert (await client.get("/public/nosuch/odr-units")).status_code == 404
    assert (await client.get("/public/shanghai/odr-units?node=999999")).status_code == 404
    # another tenant's directory does not list Shanghai's units
    assert active["code"] not in [d["credit_code"] for d in (await client.get("/public/jiangsu/odr-units")).json()]


async def test_host_unit_lists_its_member_merchants_and_complaints_go_to_the_host(client, demo):
    host = await approved_unit(client, unit_type="host_unit", name=f"测试购物中心{secrets.token_hex(3)}")
    member_code = credit_code()
    r = await apply(client, member_code, host_unit_id=host["id"], name=f"商场内商户{secrets.token_hex(3)}")
    assert r.status_code == 201, r.text
    member_app = r.json()["application_id"]
    r = await review(client, member_app, {"decision": "approve", "method": "comprehensive"})
    assert r.status_code == 200 and r.json()["unit"]["host_unit_id"] == host["id"]
    # a plain enterprise is no host
    plain = await approved_unit(client)
    r = await apply(client, credit_code(), host_unit_id=plain["id"])
    assert r.status_code == 400 and r.json()["field"] == "host_unit_id"

    listing = (await client.get("/public/shanghai/odr-units?node=310116")).json()
    codes = [d["credit_code"] for d in listing]
    assert host["code"] in codes and member_code not in codes  # members appear under their host only
    entry = next(d for d in listing if d["credit_code"] == host["code"])
    assert [m["credit_code"] for m in entry["members"]] == [member_code]
    found = (await client.get("/public/shanghai/odr-units", params={"q": member_code})).json()
    assert [d["credit_code"] for d in found] == [host["code"]]

    async with tenant_transaction("shanghai") as conn:
        by_code = await find_active_unit(conn, credit_code=member_code)
        by_id = await find_active_unit(conn, enterprise_id=host["id"])
        nothing = await find_active_unit(conn, credit_code=credit_code())
        by_name = await find_active_unit(conn, name=entry["name"])
    assert str(by_code["id"]) == host["id"] and by_code["member"]["credit_code"] == member_code
    assert set(by_code) >= {"id", "name", "credit_code", "node_code", "status", "host_unit_id"} and by_code["status"] == "active"
    assert str(by_id["id"]) == host["id"] and by_id["member"] is None and by_id["node_code"] == "310116"
    assert nothing is None and str(by_name["id"]) == host["id"]

    # when the host is suspended its members are not reachable for ODR
    await client.post(
        f"/api/tenants/shanghai/odr-units/{host['id']}/suspension", json={"ground": "other_failure"}, headers=await login(client, "js-officer")
    )
    async with tenant_transaction("shanghai") as conn:
        assert await find_active_unit(conn, credit_code=member_code) is None


async def test_unit_details_with_liaisons_only_for_the_reviewing_bureau_and_the_unit(client, demo):
    unit = await approved_unit(client)
    url = f"/api/tenants/shanghai/odr-units/{unit['id']}"
    r = await client.get(url, headers=await login(client, "js-officer"))
    assert r.status_code == 200 and PIC_PHONE in r.text
    for user in ("js-office-head", "pd-office-head", "sh-consumer"):
        assert (await client.get(url, headers=await login(client, user))).status_code in (403, 404), user
    assert (await client.get(url, headers=await login(client, "wx-officer"))).status_code == 404
    # bureau lists carry no personal data
    r = await client.get("/api/tenants/shanghai/odr-units", params={"q": unit["code"]}, headers=await login(client, "js-officer"))
    assert [u["credit_code"] for u in r.json()] == [unit["code"]] and PIC_PHONE not in r.text and PIC_NAME not in r.text
