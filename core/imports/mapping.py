"""The column mapping of a complaint import: which column header holds which field, how the export's
states read, and which handling departments stand for which jurisdiction nodes.

The default is the national 12315 platform's case export (Chinese headers, several spellings each: the
first one found in the file is used). A tenant stores its own (``import_mappings``, set through the API
or the console as TOML or JSON); the CLI also takes a TOML file. A mapping given is merged over the
default: a column not named keeps its default headers, ``states`` and ``departments`` add to (and
override entries of) the default tables. Example (TOML)::

    [columns]
    registration_number = ["投诉编号"]
    received_at = ["接收时间"]

    [states]
    "已反馈" = "open"

    [departments]
    "金山局消保科" = "310116"
"""

from __future__ import annotations

import tomllib
from typing import Annotated, Any, Literal

import msgspec

Headers = Annotated[tuple[Annotated[str, msgspec.Meta(min_length=1, max_length=100)], ...], msgspec.Meta(min_length=1, max_length=20)]
ImportState = Literal["open", "closed", "returned", "withdrawn", "left_odr"]
"""What an exported case's state means here: ``open`` (still being handled: it gets its clocks when the
company is an active ODR unit), or one of the terminal states (imported as that state, no live timer)."""


class Columns(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Field -> the headers that may hold it (the first present in the file is read)."""

    registration_number: Headers = ("登记编号", "投诉编号", "登记号", "编号")
    received_at: Headers = ("登记时间", "接收时间", "投诉时间", "受理时间")
    channel: Headers = ("投诉渠道", "来源渠道", "登记渠道", "渠道")
    consumer_name: Headers = ("投诉人姓名", "消费者姓名", "投诉人")
    consumer_phone: Headers = ("投诉人电话", "联系电话", "消费者电话", "手机号码")
    consumer_address: Headers = ("投诉人地址", "联系地址", "消费者地址")
    company_name: Headers = ("被投诉单位名称", "被投诉单位", "被投诉人", "经营者名称", "企业名称")
    credit_code: Headers = ("统一社会信用代码", "被投诉单位统一社会信用代码", "信用代码")
    category: Headers = ("投诉类别", "问题类别", "消费类别")
    amount: Headers = ("涉案金额", "争议金额", "涉及金额（元）", "金额")
    subject: Headers = ("投诉标题", "标题")
    description: Headers = ("投诉内容", "诉求内容", "事件描述", "问题描述")
    handling_department: Headers = ("承办部门", "处理部门", "承办单位", "处理单位")
    state: Headers = ("处理状态", "办理状态", "状态")
    closed_at: Headers = ("办结时间", "结案时间")


REQUIRED = ("registration_number", "received_at", "consumer_name", "consumer_phone", "company_name", "description")
"""Fields without which no row can be imported: a file lacking one of their columns is refused whole."""

DEFAULT_STATES: dict[str, ImportState] = {
    "待处理": "open", "待受理": "open", "已受理": "open", "处理中": "open", "调解中": "open", "已分送": "open",
    "已分流": "open", "已转办": "open", "未办结": "open",
    "已办结": "closed", "办结": "closed", "已完成": "closed", "已结案": "closed", "调解成功": "closed",
    "不予受理": "returned", "已退回": "returned", "终止调解": "left_odr", "调解不成": "left_odr",
    "已撤回": "withdrawn", "撤诉": "withdrawn", "消费者撤回": "withdrawn",
}


class ColumnMapping(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A complaint import's mapping (see the module). ``states``: the export's state label -> its
    meaning here (an empty cell is ``open``); ``departments``: a handling department's name -> the code
    of its jurisdiction node (a department named exactly like a node of the tree needs no entry)."""

    columns: Columns = msgspec.field(default_factory=Columns)
    states: dict[str, ImportState] = msgspec.field(default_factory=lambda: dict(DEFAULT_STATES))
    departments: dict[str, str] = {}


DEFAULT_MAPPING = ColumnMapping()


def mapping_from_dict(data: dict[str, Any]) -> ColumnMapping:
    """The mapping given (TOML or JSON, decoded) merged over the default; ``msgspec.ValidationError``
    naming the field (``$.columns.amount``...) when it is malformed."""
    given = msgspec.convert(data, ColumnMapping)
    raw = data if isinstance(data, dict) else {}
    return ColumnMapping(
        columns=given.columns,
        states={**DEFAULT_STATES, **given.states} if "states" in raw else given.states,
        departments=given.departments,
    )


def mapping_from_toml(text: str) -> ColumnMapping:
    """Parse a TOML mapping; ``ValueError`` (a TOML syntax error, with its line) or
    ``msgspec.ValidationError`` (naming the field)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"mapping: not valid TOML ({exc})") from None
    return mapping_from_dict(data)


def _toml_str(s: str) -> str:
    return msgspec.json.encode(s).decode()  # a JSON string is a valid TOML basic string


def mapping_to_toml(mapping: ColumnMapping) -> str:
    """The mapping as TOML (what the console shows for editing)."""
    lines = ["[columns]"]
    for name in Columns.__struct_fields__:
        headers = getattr(mapping.columns, name)
        lines.append(f"{name} = [{', '.join(_toml_str(h) for h in headers)}]")
    lines += ["", "[states]"]
    lines += [f"{_toml_str(k)} = {_toml_str(v)}" for k, v in mapping.states.items()]
    lines += ["", "[departments]"]
    lines += [f"{_toml_str(k)} = {_toml_str(v)}" for k, v in mapping.departments.items()]
    return "\n".join(lines) + "\n"


async def load_mapping(conn) -> ColumnMapping:
    """The tenant's stored mapping (in the caller's tenant transaction), or the default."""
    raw = await conn.fetchval("SELECT mapping FROM import_mappings WHERE kind = 'complaints'")
    return msgspec.json.decode(raw, type=ColumnMapping) if raw else ColumnMapping()


async def save_mapping(conn, mapping: ColumnMapping, *, actor: str) -> None:
    """Store the tenant's mapping (in the caller's tenant transaction)."""
    await conn.execute(
        """INSERT INTO import_mappings (kind, mapping, updated_by) VALUES ('complaints', $1::jsonb, $2)
           ON CONFLICT (kind) DO UPDATE SET mapping = EXCLUDED.mapping, updated_by = EXCLUDED.updated_by,
                                            updated_at = now()""",
        msgspec.json.encode(mapping).decode(), actor,
    )
