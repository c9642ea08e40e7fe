"""A generated export in the national 12315 platform's case layout (the import's tests and benchmark).

:func:`sample_export` gives the header and rows (Chinese headers of the default mapping); about one
row in 50 is bad on purpose, in turn: a wrong credit-code check character, no registration number, an
impossible received time, a company that is not registered here (valid code, no handling department),
a negative amount, a registration number repeated from an earlier line. ``bad`` maps each bad row's
line (the header is line 1) to the field it must be refused for. :func:`write_csv` and
:func:`write_xlsx` write it as a bureau would receive it (CSV in UTF-8 with a BOM, as Excel saves it).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random

import msgspec

HEADER = ["登记编号", "登记时间", "投诉渠道", "投诉人姓名", "投诉人电话", "投诉人地址", "被投诉单位名称",
          "统一社会信用代码", "投诉类别", "涉案金额", "投诉内容", "承办部门", "处理状态", "办结时间"]
CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
BAD_KINDS = ("credit_code", "registration_number", "received_at", "unknown_company", "amount", "duplicate")
FIELD_OF_KIND = {"unknown_company": "credit_code", "duplicate": "registration_number"}


def valid_credit_code(rng: random.Random) -> str:
    """A random unified social credit code with a correct GB 32100 check character."""
    body = "91" + "".join(rng.choice(CHARSET) for _ in range(6)) + "".join(rng.choice(CHARSET) for _ in range(9))
    total = sum(CHARSET.index(c) * w for c, w in zip(body, _WEIGHTS))
    return body + CHARSET[(31 - total % 31) % 31]


class Sample(msgspec.Struct, kw_only=True):
    header: list[str]
    rows: list[list[str]]
    bad: dict[int, str]
    """line -> the field the row must be refused for"""
    unit_rows: int
    """good rows naming a registered company"""


def sample_export(n: int, *, units: list[tuple[str, str]], departments: list[str], seed: int = 12315,
                  prefix: str = "3100002026", now: dt.datetime | None = None, bad_every: int = 50) -> Sample:
    """``n`` rows; ``units``: (name, credit code) of companies registered in the tenant; ``departments``:
    handling department names that are node names of the tenant."""
    rng = random.Random(seed)
    now = (now or dt.datetime.now()).replace(microsecond=0)
    surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
    categories = ["网络购物", "餐饮服务", "美容美发", "预付卡消费", "家用电器", "通信服务", "交通出行", "教育培训"]
    channels = ["全国12315平台", "12315热线", "微信小程序", "来信来访"]
    states = ["已办结"] * 6 + ["处理中"] * 3 + ["不予受理", "已撤回"]
    rows: list[list[str]] = []
    bad: dict[int, str] = {}
    unit_rows = 0
    kind_no = 0
    for i in range(n):
        line = i + 2
        received = now - dt.timedelta(minutes=rng.randint(60, 60 * 24 * 60))
        state = rng.choice(states)
        closed = (received + dt.timedelta(days=rng.randint(1, 9))) if state == "已办结" else None
        if closed is not None and closed > now:
            closed = now
        with_unit = rng.random() < 0.4
        if with_unit:
            company, code = rng.choice(units)
            department = ""
        else:
            company, code = f"某某{rng.choice(categories)}经营部{rng.randint(1, 999)}", ""
            department = rng.choice(departments)
        row = [
            f"{prefix}{i:08d}",
            received.strftime("%Y-%m-%d %H:%M:%S"),
            rng.choice(channels),
            rng.choice(surnames) + rng.choice("伟芳娜敏静丽强磊军洋") + rng.choice(["", "华", "明"]),
            f"13{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}",
            f"上海市金山区朱泾镇测试路{rng.randint(1, 999)}号",
            company,
            code,
            rng.choice(categories),
            f"{rng.randint(0, 500_000) / 100:.2f}",
            "消费者反映：所购商品与宣传不符，要求退款。" * rng.randint(1, 3),
            department,
            state,
            closed.strftime("%Y-%m-%d %H:%M:%S") if closed else "",
        ]
        if bad_every and i % bad_every == bad_every - 1:
            kind = BAD_KINDS[kind_no % len(BAD_KINDS)]
            kind_no += 1
            if kind == "credit_code":
                good = rng.choice(units)[1]
                row[6], row[7], row[11] = "错误代码公司", good[:17] + CHARSET[(CHARSET.index(good[17]) + 1) % 31], ""
            elif kind == "registration_number":
                row[0] = ""
            elif kind == "received_at":
                row[1] = "2026-13-45 25:61"
            elif kind == "unknown_company":
                row[6], row[7], row[11] = "未登记公司", valid_credit_code(rng), ""
            elif kind == "amount":
                row[9] = "-50.00"
            elif kind == "duplicate":
                row[0] = rows[-1][0] if rows[-1][0] else rows[-2][0]
            bad[line] = FIELD_OF_KIND.get(kind, kind)
        elif with_unit:
            unit_rows += 1
        rows.append(row)
    return Sample(header=list(HEADER), rows=rows, bad=bad, unit_rows=unit_rows)


def write_csv(sample: Sample) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(sample.header)
    writer.writerows(sample.rows)
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def write_xlsx(sample: Sample) -> bytes:
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
                                        "strings_to_urls": False, "constant_memory": True})
    sheet = book.add_worksheet("投诉")
    sheet.write_row(0, 0, sample.header)
    for r, row in enumerate(sample.rows, start=1):
        sheet.write_row(r, 0, [c if c != "" else None for c in row])
    book.close()
    return buffer.getvalue()
