"""A deadline policy that misbehaves on purpose, chosen by its configuration's ``mode`` (example vendor
plugin; never activate it for real complaints).

Modes: ``behave`` (a plan of 2 working days to contact, 9 to close), ``sleep`` (``sleep_seconds``),
``spin`` (a CPU loop that never ends), ``allocate`` (``allocate_gb`` of memory), ``raise`` (an
exception whose message holds a phone number), ``exit`` (the process exits), ``environ`` (reports
what ``os.environ`` holds), ``connect`` (tries to open a connection to ``target``: a Unix socket path
or ``host:port``), ``other_config`` (reports every configuration its scope holds).

The reporting modes answer a normal plan whose ``legal_basis`` is ``"observed: "`` + a JSON object of
what the plugin saw, so a test can read it from the complaint's deadline explanation.
"""

from __future__ import annotations

import json
import os
import socket
import time

import msgspec

from odr_plugin_api import DeadlineClock, DeadlinePlan, DeadlineRequest, Family, PluginInfo, Scope, Secret, hookimpl

NAME = "acme_misbehaving_policy"
VERSION = "0.0.1"
SUSPICIOUS = ("postgres", "ODR_", "secret", "password")


class MisbehavingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    mode: str = "behave"
    sleep_seconds: float = 60.0
    allocate_gb: float = 4.0
    target: str = ""
    api_key: Secret = ""
    """Its own secret: the plugin does see this one."""


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(name=NAME, version=VERSION, title="Misbehaving policy (example)",
                      families=(Family.DEADLINE_POLICY,), config=MisbehavingConfig)


def plan(observed: dict | None = None) -> DeadlinePlan:
    return DeadlinePlan(policy=NAME, version=VERSION, contact_days=2, contact_clock=DeadlineClock.WORKING_DAYS,
                        close_days=9, close_clock=DeadlineClock.WORKING_DAYS,
                        legal_basis="observed: " + json.dumps(observed, sort_keys=True) if observed is not None else "")


def connect(target: str) -> str:
    """``"connected"`` or why not (the exception's type and errno name)."""
    try:
        if ":" in target and not target.startswith("/"):
            host, port = target.rsplit(":", 1)
            sock = socket.create_connection((host, int(port)), timeout=2)
        else:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(2)
            sock.connect(target)
        sock.close()
        return "connected"
    except OSError as exc:
        import errno

        return f"{type(exc).__name__}:{errno.errorcode.get(exc.errno or 0, exc.errno)}"


@hookimpl
def odr_deadline_policy(scope: Scope, request: DeadlineRequest) -> DeadlinePlan:
    cfg: MisbehavingConfig = scope.config(NAME, MisbehavingConfig())
    if cfg.mode == "sleep":
        time.sleep(cfg.sleep_seconds)
    elif cfg.mode == "spin":
        while True:
            pass
    elif cfg.mode == "allocate":
        hog = bytearray(int(cfg.allocate_gb * 1024 ** 3))
        return plan({"allocated": len(hog)})
    elif cfg.mode == "raise":
        raise RuntimeError("consumer 13800138000 made me fail")
    elif cfg.mode == "exit":
        os._exit(3)
    elif cfg.mode == "environ":
        env = dict(os.environ)
        return plan({"keys": sorted(env), "suspicious": sorted(k for k, v in env.items()
                                                              if any(s.lower() in (k + "=" + v).lower() for s in SUSPICIOUS))})
    elif cfg.mode == "connect":
        return plan({"connect": connect(cfg.target)})
    elif cfg.mode == "other_config":
        seen = {name: msgspec.to_builtins(value) for name, value in scope.configs.items()}
        return plan({"configs": sorted(seen), "own_api_key": cfg.api_key,
                     "email": msgspec.to_builtins(scope.config("odr_email")),
                     "sms": msgspec.to_builtins(scope.config("acme_sms_gateway"))})
    return plan()
