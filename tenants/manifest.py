"""Tenant manifests: a province, its jurisdiction tree, initial plugin choices and demo accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec

from core.db.engine import SLUG_RE
from core.imports.mapping import mapping_from_dict

MANIFEST_DIR = Path(__file__).parent / "manifests"
LEVELS = ("province", "city", "district", "office")
Level = Literal["province", "city", "district", "office"]


class NodeSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: str
    name: str
    level: Level
    parent: str | None = None
    name_en: str = ""


class PluginChoice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    node: str
    plugin: str
    active: bool = True
    config: dict[str, Any] | None = None


class DemoAccount(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    username: str
    password: str
    role: Literal["province_admin", "bureau_officer", "office_head", "consumer"]
    node: str | None = None
    display_name: str = ""


class Manifest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    slug: str
    name: str
    name_en: str = ""
    nodes: list[NodeSpec]
    plugins: list[PluginChoice] = []
    demo_accounts: list[DemoAccount] = []
    import_mapping: dict[str, Any] | None = None
    """The province's column mapping for imports of 12315 exports (``core.imports.mapping.ColumnMapping``:
    ``[import_mapping.columns]``, ``.states``, ``.departments``), merged over the national layout; stored
    at onboarding, changed later through the API or the console."""

    def validate(self) -> "Manifest":
        """Check the tree; raise ``ValueError`` naming the offending field."""
        if not SLUG_RE.match(self.slug):
            raise ValueError("slug: lower-case letters, digits and underscore, 2-30 characters, starting with a letter")
        seen: dict[str, NodeSpec] = {}
        roots = 0
        for i, node in enumerate(self.nodes):
            where = f"nodes[{i}]"  # the field first (the API's 400 names it), then which node
            if node.code in seen:
                raise ValueError(f"{where}.code: duplicate code {node.code!r}")
            if node.parent is None:
                roots += 1
                if node.level != "province":
                    raise ValueError(f"{where}.parent: only the province node has no parent (node {node.code!r})")
            else:
                parent = seen.get(node.parent)
                if parent is None:
                    raise ValueError(f"{where}.parent: unknown parent {node.parent!r} of node {node.code!r} "
                                     "(parents come first)")
                if LEVELS.index(node.level) <= LEVELS.index(parent.level):
                    raise ValueError(f"{where}.level: a {node.level} cannot sit under a {parent.level} "
                                     f"(node {node.code!r})")
            seen[node.code] = node
        if roots != 1:
            raise ValueError("nodes: exactly one province node (without parent) is required")
        for i, choice in enumerate(self.plugins):
            if choice.node not in seen:
                raise ValueError(f"plugins[{i}].node: unknown node {choice.node!r}")
        if self.import_mapping is not None:
            try:
                mapping = mapping_from_dict(self.import_mapping)
            except msgspec.ValidationError as exc:
                raise ValueError(f"import_mapping: {exc}") from None
            for name, code in mapping.departments.items():
                if code not in seen:
                    raise ValueError(f"import_mapping.departments.{name}: unknown node {code!r}")
        for i, account in enumerate(self.demo_accounts):
            if account.node is not None and account.node not in seen:
                raise ValueError(f"demo_accounts[{i}].node: unknown node {account.node!r}")
        return self

    def paths(self) -> dict[str, str]:
        """Materialised path ``root/.../code`` of every node."""
        by_code = {n.code: n for n in self.nodes}
        out: dict[str, str] = {}
        for node in self.nodes:
            out[node.code] = node.code if node.parent is None else f"{out[by_code[node.parent].code]}/{node.code}"
        return out


def parse_manifest(data: bytes, *, fmt: str = "toml") -> Manifest:
    decoder = msgspec.toml.decode if fmt == "toml" else msgspec.json.decode
    return decoder(data, type=Manifest).validate()


def load_manifest(name_or_path: str) -> Manifest:
    path = Path(name_or_path)
    if not path.exists():
        path = MANIFEST_DIR / f"{name_or_path}.toml"
    return parse_manifest(path.read_bytes())


def demo_manifests() -> list[Manifest]:
    return [load_manifest(str(p)) for p in sorted(MANIFEST_DIR.glob("*.toml"))]
