"""Shanghai's Jinshan district runs its own deadline plugin (demo manifest) while the rest of
Shanghai runs the national policy: the same start gives different, correct due moments."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from core.deadlines.service import complaint_deadlines
from tests.complaint_helpers import active_unit, consumer
from tests.conftest import login

TZ = ZoneInfo("Asia/Shanghai")


def end_of(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(23, 59, 59), TZ)


@pytest.mark.parametrize(
    "start, jinshan, pudong",
    [
        # Wed 30 Sep 2026. Jinshan: 2 natural days end Fri 2 Oct and 7 end Wed 7 Oct, both inside the
        # National Day holiday (1-7 Oct), so both roll over to Thu 8 Oct. National: 3 working days =
        # 8, 9, 10 Oct (Sat 10 Oct is a make-up working day); 10 = 8, 9, 10, 12, 13, 14, 15, 16, 19, 20 Oct.
        ("2026-09-30T15:00:00+08:00", ("2026-10-08", "2026-10-08"), ("2026-10-10", "2026-10-20")),
        # Mon 1 Jun 2026, no holiday near: Jinshan 2 and 7 natural days = Wed 3 Jun, Mon 8 Jun;
        # national 3 working days = Thu 4 Jun, 10 working days = Mon 15 Jun.
        ("2026-06-01T10:00:00+08:00", ("2026-06-03", "2026-06-08"), ("2026-06-04", "2026-06-15")),
    ],
)
async def test_jinshan_and_pudong_get_their_own_due_moments(demo, start, jinshan, pudong):
    start = dt.datetime.fromisoformat(start)
    for node in ("310116", "310116-01", "310116-02"):  # the district and its offices (inherited)
        d = await complaint_deadlines(demo, "shanghai", node, start)
        assert d.plugin == "odr_jinshan_deadline"
        assert (d.contact.clock.value, d.close.clock.value) == ("natural_days", "natural_days")
        assert (d.contact.due, d.close.due) == (end_of(jinshan[0]), end_of(jinshan[1]))
    for node in ("310000", "310115", "310115-01"):
        d = await complaint_deadlines(demo, "shanghai", node, start)
        assert d.plugin == "odr_national_deadline"
        assert (d.contact.due, d.close.due) == (end_of(pudong[0]), end_of(pudong[1]))


async def test_complaints_filed_in_each_district_carry_their_policy(client, demo):
    user = await consumer(client, "shanghai")
    cons = await login(client, user, "demo12315-pw")
    policies = {}
    for district in ("310116", "310115"):
        unit = await active_unit("shanghai", district)
        body = {"company_name": "某公司", "enterprise_id": unit["id"], "route": "odr", "subject": "退货纠纷",
                "description": "商品有质量问题。", "consumer_name": "陈先生", "consumer_phone": "13500001234"}
        r = await client.post("/api/tenants/shanghai/complaints", json=body, headers=cons)
        assert r.status_code == 201, r.text
        c = r.json()["complaint"]
        explained = (await client.get(f"/api/tenants/shanghai/complaints/{c['id']}/deadlines", headers=cons)).json()
        policies[district] = (c["deadline_policy"], explained["close"]["clock"], explained["close"]["days"])
    assert policies == {"310116": ("odr_jinshan_deadline", "natural_days", 7),
                        "310115": ("odr_national_deadline", "working_days", 10)}


async def test_jinshan_config_is_validated_naming_the_field(client, demo):
    r = await client.put("/api/tenants/shanghai/policy/310116/plugins/odr_jinshan_deadline",
                         json={"active": True, "config": {"close_days": 0}}, headers=await login(client, "js-officer"))
    assert r.status_code == 400 and r.json()["field"] == "config.close_days"
    r = await client.get("/api/tenants/shanghai/policy/310116-01", headers=await login(client, "js-office-head"))
    choice = next(c for c in r.json()["choices"] if c["plugin"] == "odr_jinshan_deadline")
    assert choice["active"] and choice["source"] == "310116" and choice["config"]["close_days"] == 7
