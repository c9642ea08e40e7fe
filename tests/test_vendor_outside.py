"""A vendor's plugin from outside the repository (issue 27), following plugins/pytest-odr/README.md
"Writing a plugin from outside the repository" literally: the distribution's files are taken from the
README's code blocks, written into a fresh temporary directory, built against the wheels of
``deploy/dev.py dist`` in a clean virtual environment (the platform's packages not importable), tested
by the kit, built as a wheel, installed into the platform and activated through the API.

The clean environment gets the third-party dependencies of the API, the kit and hatchling (pytest,
pluggy, msgspec, chinese-calendar, …) from the platform's environment through a ``.pth`` file listing
only those distributions, so nothing is downloaded; everything else is the README's commands with
``--no-index``.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import login

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "plugins" / "pytest-odr" / "README.md"
FILE_BLOCK = re.compile(r"<!-- file: (?P<path>[^ ]+) -->\n```[a-z]*\n(?P<body>.*?)```", re.S)
OUTSIDE_DEPENDENCIES = ("pytest", "pluggy", "msgspec", "chinese-calendar", "hatchling")
"""What the API, the kit and the vendor's build need from an index (resolved with their dependencies)."""


def readme_files(target: Path) -> list[Path]:
    written = []
    for m in FILE_BLOCK.finditer(README.read_text()):
        path = target / m.group("path")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(m.group("body"))
        written.append(path)
    return written


def closure(names: tuple[str, ...]) -> set[str]:
    """The installed distributions ``names`` need, dependencies included (markers of this interpreter)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = md.distribution(todo.pop()).metadata["Name"]
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        for text in md.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def third_party_dir(target: Path) -> Path:
    """A directory holding (symlinks to) exactly the distributions of :func:`closure` and their metadata."""
    target.mkdir()
    for name in closure(OUTSIDE_DEPENDENCIES):
        dist = md.distribution(name)
        base = Path(dist.locate_file(""))
        for top in {Path(f).parts[0] for f in dist.files or () if not str(f).startswith("..")}:
            if top not in ("__pycache__", "bin") and not (target / top).exists():
                (target / top).symlink_to(base / top)
    assert not any((target / p).exists() for p in ("core", "odr", "tenants", "admin_ui", "odr_plugin_api"))
    return target


def run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "ODR_"))}
    clean.update({"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_CONFIG_FILE": os.devnull})
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**clean, **(env or {})})


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Steps 1-4 of the README: wheels, the distribution's files, a clean environment, the kit, the wheel."""
    tmp = tmp_path_factory.mktemp("vendor")
    r = run([sys.executable, str(ROOT / "deploy" / "dev.py"), "dist", str(tmp / "dist")], cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    wheels = sorted(str(p) for p in (tmp / "dist").glob("*.whl"))
    files = readme_files(tmp)
    assert {f.relative_to(tmp).as_posix() for f in files} >= {"gd-policy/pyproject.toml", "gd-policy/gd_policy/score.py",
                                                             "gd-policy/gd_policy/deadline.py", "gd-policy/tests/test_gd.py"}
    project = tmp / "gd-policy"
    venv = tmp / "venv"
    r = run([sys.executable, "-m", "venv", str(venv)], cwd=tmp)
    assert r.returncode == 0, r.stderr
    python = str(venv / "bin" / "python")
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).stdout.strip())
    (site / "outside-deps.pth").write_text(str(third_party_dir(tmp / "deps")) + "\n")
    r = run([python, "-c", "import core"], cwd=project)
    assert r.returncode != 0 and "No module named 'core'" in r.stderr  # the platform is not there

    r = run([python, "-m", "pip", "install", "--no-deps", *wheels], cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "."], cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    kit = run([python, "-m", "pytest", "-v", "-p", "no:cacheprovider"], cwd=project)
    api_from = run([python, "-c", "import odr_plugin_api; print(odr_plugin_api.__file__)"], cwd=project).stdout.strip()
    r = run([python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", ".", "-w", "wheelhouse"], cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = (project / "wheelhouse").glob("gd_policy-*.whl")
    return {"tmp": tmp, "kit": kit, "wheel": wheel, "api_from": api_from}


def test_the_kit_passes_the_plugin_written_from_the_docs(built):
    kit = built["kit"]
    out = kit.stdout + kit.stderr
    assert kit.returncode == 0, out
    for plugin, family in (("gd_deadline", "deadline_policy"), ("gd_score", "scoring")):
        for check in ("entry_point", "plugin_info", "imports", "hooks", "families", "isolation", "config", family):
            assert f"pytest-odr::{plugin}::{check} PASSED" in out, (plugin, check, out)
    assert "tests/test_gd.py::test_a_perfect_unit_scores_100 PASSED" in out
    assert built["api_from"].startswith(str(built["tmp"] / "venv"))  # the API the kit used came from the wheel


def test_installed_into_the_platform_it_loads_and_passes_the_platform_check(built, tmp_path):
    site = tmp_path / "site"
    r = run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(built["wheel"])], cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    env = {"PYTHONPATH": f"{site}:{ROOT}", "ODR_PLUGINS_ALLOW": "builtin,gd_deadline,gd_score"}
    r = run([sys.executable, "-m", "odr.cli", "plugins", "check", "gd_deadline", "gd_score"], cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    code = ("import json; from core.pluginhost.host import PluginHost\n"
            "h = PluginHost('builtin,gd_deadline,gd_score'); h.load_entry_points()\n"
            "print(json.dumps({n: [d.loaded, d.distribution, d.info.api_version if d.info else None]"
            " for n, d in h.discovered.items() if n.startswith('gd_')}))")
    r = run([sys.executable, "-c", code], cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"gd_deadline": [True, "gd-policy", "1.1.0"], "gd_score": [True, "gd-policy", "1.1.0"]}


async def test_activated_by_a_bureau_it_decides_deadlines_and_scores(built, tmp_path, client, demo):
    site = tmp_path / "site"
    r = run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(built["wheel"])], cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    sys.path.insert(0, str(site))
    head = await login(client, "sh-admin")
    policy = "/api/tenants/shanghai/policy/310115/plugins"
    province = await client.get("/api/tenants/shanghai/policy/310000", headers=head)
    national = next(c for c in province.json()["choices"] if c["plugin"] == "odr_national_score")
    had_formula = national["active"] and national["source"] == "310000"  # the demo's; other tests may remove it
    try:
        if not had_formula:  # the province's formula, inherited by the district (as in the demo manifest)
            r = await client.put("/api/tenants/shanghai/policy/310000/plugins/odr_national_score", json={"active": True},
                                 headers=head)
            assert r.status_code == 200, r.text
        for name in ("gd_deadline", "gd_score"):  # what load_entry_points does with the installed entry points
            (ep,) = [e for e in md.entry_points(group="odr.plugins", name=name) if e.dist.name == "gd-policy"]
            demo.host.register(ep.load(), name=name)
        r = await client.put(f"{policy}/gd_deadline", json={"active": True, "config": {"close_days": 7}}, headers=head)
        assert r.status_code == 200, r.text
        r = await client.get("/api/tenants/shanghai/deadlines/explain", headers=head,
                             params={"node": "310115-01", "start": "2026-10-09T10:00:00+08:00"})
        explained = r.json()
        assert explained["plugin"] == "gd_deadline" and explained["fallback_from"] == []
        assert explained["contact"]["due"] == "2026-10-12T23:59:59+08:00"  # the make-up Saturday counted

        r = await client.put(f"{policy}/gd_score", json={"active": True}, headers=head)
        assert r.status_code == 409 and "switch it off at node 310115" in r.json()["detail"], r.text
        r = await client.put(f"{policy}/odr_national_score", json={"active": False}, headers=head)
        assert r.status_code == 200, r.text
        r = await client.put(f"{policy}/gd_score", json={"active": True, "config": {"settlement_weight": 0.6}}, headers=head)
        assert r.status_code == 200, r.text
        r = await client.put(f"{policy}/gd_score", json={"active": True, "config": {"cycle_weight": "0.2"}}, headers=head)
        assert r.status_code == 400 and r.json()["field"] == "config.cycle_weight"
        from odr_plugin_api.samples import INDICATORS

        scope, active = await demo.scope("shanghai", "310115")
        call = demo.host.first_answerer("odr_score_enterprise", active=active)
        for indicators in INDICATORS:
            answer = call(scope=scope, indicators=indicators)
            assert answer.plugin == "gd_score" and 0 <= answer.result.score <= 100 and not answer.failed
    finally:
        from core.db.engine import platform_transaction

        async with platform_transaction() as conn:
            await conn.execute("DELETE FROM odr.plugin_activations WHERE tenant = 'shanghai' AND node_code = '310115'"
                               " AND plugin IN ('gd_deadline', 'gd_score', 'odr_national_score')")
            if not had_formula:
                await conn.execute("DELETE FROM odr.plugin_activations WHERE tenant = 'shanghai' AND node_code = '310000'"
                                   " AND plugin = 'odr_national_score'")
        for name in ("gd_deadline", "gd_score"):
            if name in demo.host.infos:
                demo.host.unregister(name)
        demo.forget_activations("shanghai")
        sys.path.remove(str(site))
        for module in [m for m in sys.modules if m == "gd_policy" or m.startswith("gd_policy.")]:
            del sys.modules[module]
        importlib.invalidate_caches()
