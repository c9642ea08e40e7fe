"""The isolated plugin worker: one process per plugin from outside the platform's own distributions.

Started by :class:`odr_plugin_api.sandbox.IsolatedWorker` (the platform's host, and the vendor kit
``pytest-odr``, which runs a vendor's plugin under the same limits) as
``python -I sandbox_worker.py IN_FD OUT_FD``
(isolated mode: no ``PYTHON*`` variables, no user site, no script directory on the path) with a clean
environment (no ``ODR_*`` variable, no database URL), a scratch working directory, and only two pipe
ends open besides stdin/stdout/stderr (``/dev/null``).

Protocol (msgspec MessagePack, one message per ``multiprocessing.connection`` frame):
- host → :class:`Init`; the worker applies its limits (RLIMIT_AS, RLIMIT_CPU; for policy plugins no
  network: a fresh network namespace and a seccomp filter refusing ``socket()``, each where the
  system allows), imports the plugin and answers :class:`Ready` saying which limits hold.
- host → :class:`Call` (a hook and one or more argument sets: a batch); worker → :class:`Answer`, one
  :class:`Outcome` per argument set, in order: the hook's return value (as MessagePack builtins) or
  the type name of the exception it raised (never its message: it may carry personal data).

The host enforces the time budget: a worker that does not answer in time is killed and restarted.
This module imports nothing of the platform (it must not: the worker gets none of its state); the
seccomp filter needs ``pyseccomp`` (and the system's libseccomp), and is reported missing without it.
"""

from __future__ import annotations

import errno
import inspect
import os
import resource
import sys
from typing import Any

import msgspec


class Init(msgspec.Struct, frozen=True, kw_only=True):
    plugin: str
    target: str
    """``module`` or ``module:attribute`` (an entry point's value)."""
    sys_path: list[str]
    memory_mb: int
    cpu_seconds: int
    deny_network: bool
    net_allow: list[str] = []
    """The operator's allow-list of internal hosts (ODR_OUTBOUND_ALLOW_HOSTS) for the ``net`` client
    handed to a channel plugin's hooks here (:class:`odr_plugin_api.net_client.CheckedNetwork`)."""


class Ready(msgspec.Struct, frozen=True, kw_only=True):
    pid: int
    limits: list[str] = []
    """What holds, e.g. ``rlimit_as=1024MB``, ``netns``, ``seccomp``."""
    missing: list[str] = []
    """Limits asked for that the system refused (e.g. ``netns: EPERM``)."""
    error: str | None = None
    """The plugin failed to load (exception type)."""


class Call(msgspec.Struct, frozen=True, kw_only=True):
    hook: str
    calls: list[dict[str, Any]]


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    value: Any = None
    error: str | None = None
    """The type name of the exception the hook raised."""
    detail: str | None = None
    """For :class:`odr_plugin_api.DeliveryFailed` only: its message (free of personal data by contract,
    shown to the bureau), at most 300 characters."""


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    outcomes: list[Outcome]


CLONE_NEWNET = 0x40000000


def apply_limits(init: Init) -> tuple[list[str], list[str]]:
    """Set the process's limits; returns (what holds, what the system refused)."""
    held, missing = [], []
    memory = init.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (init.cpu_seconds, init.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    held += [f"rlimit_as={init.memory_mb}MB", f"rlimit_cpu={init.cpu_seconds}s"]
    if not init.deny_network:
        return held, missing
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare")
        held.append("netns")
    except Exception as exc:
        missing.append(f"netns: {errno.errorcode.get(getattr(exc, 'errno', 0) or 0, type(exc).__name__)}")
    try:
        import pyseccomp as seccomp

        f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        for call in ("socket", "socketpair"):
            f.add_rule(seccomp.ERRNO(errno.EACCES), call)
        f.load()
        held.append("seccomp")
    except Exception as exc:
        missing.append(f"seccomp: {type(exc).__name__}")
    return held, missing


def load(target: str) -> Any:
    import importlib

    module, _, attr = target.partition(":")
    obj = importlib.import_module(module.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def main(in_fd: int, out_fd: int) -> None:
    from multiprocessing.connection import Connection

    rx, tx = Connection(in_fd, writable=False), Connection(out_fd, readable=False)
    init = msgspec.msgpack.decode(rx.recv_bytes(), type=Init)
    held, missing = apply_limits(init)
    sys.path[:0] = [p for p in init.sys_path if p not in sys.path]
    try:
        import typing

        from odr_plugin_api import DeliveryFailed, Scope, hookspecs

        plugin = load(init.target)
        info = plugin.odr_plugin_info()
    except BaseException as exc:
        tx.send_bytes(msgspec.msgpack.encode(Ready(pid=os.getpid(), limits=held, missing=missing, error=type(exc).__name__)))
        return
    tx.send_bytes(msgspec.msgpack.encode(Ready(pid=os.getpid(), limits=held, missing=missing)))
    hints: dict[str, dict[str, Any]] = {}
    wants_net: dict[str, bool] = {}
    net = None
    decoder = msgspec.msgpack.Decoder(Call)
    while True:
        try:
            call = decoder.decode(rx.recv_bytes())
        except EOFError:
            return
        if call.hook not in hints:
            hints[call.hook] = typing.get_type_hints(getattr(hookspecs, call.hook))
        types = hints[call.hook]
        impl = getattr(plugin, call.hook)
        outcomes = []
        for args in call.calls:
            try:
                kwargs = {}
                if call.hook not in wants_net:
                    wants_net[call.hook] = "net" in inspect.signature(impl).parameters
                if wants_net[call.hook]:  # never sent over the pipe: the same checked client, built here
                    if net is None:
                        from odr_plugin_api.net_client import CheckedNetwork

                        net = CheckedNetwork(frozenset(init.net_allow))
                    kwargs["net"] = net
                for name, value in args.items():
                    if name == "scope":
                        configs = {}
                        if info.config is not None and init.plugin in (value.get("configs") or {}):
                            configs[init.plugin] = msgspec.convert(value["configs"][init.plugin], info.config)
                        value = Scope(tenant=value["tenant"], node_path=tuple(value["node_path"]), configs=configs)
                    elif name in types:
                        value = msgspec.convert(value, types[name], strict=False)
                    kwargs[name] = value
                result = impl(**kwargs)
                outcomes.append(Outcome(value=msgspec.to_builtins(result)))
            except BaseException as exc:  # the host decides what a failure means
                detail = str(exc)[:300] if isinstance(exc, DeliveryFailed) else None
                outcomes.append(Outcome(error=type(exc).__name__, detail=detail))
        tx.send_bytes(msgspec.msgpack.encode(Answer(outcomes=outcomes)))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
