"""Isolated worker processes for plugins: the supervisor side (the worker is
:mod:`odr_plugin_api.sandbox_worker`). The platform runs every plugin from outside its own
distributions this way (unless the operator trusts it); the vendor kit ``pytest-odr`` runs a vendor's
plugin the same way, so a vendor sees the platform's limits in its own CI.

Contract:
- One :class:`IsolatedWorker` per isolated plugin per platform process, started on first use and
  supervised: a worker that overruns its budget is killed (SIGKILL) and a new one is started on the
  next call; one that dies is started again the same way. Calls to one worker are serialised; a call
  that cannot get the worker within its budget counts as an overrun.
- The worker's environment is built from nothing: ``PATH``, ``LANG``, ``HOME``/``TMPDIR`` (its scratch
  directory) only; no ``ODR_*`` variable, no database URL, no open pool or socket (only the two pipe
  ends of the protocol are passed). Its working directory is a fresh scratch directory, removed when
  the worker stops. Limits: see :func:`odr_plugin_api.sandbox_worker.apply_limits`.
- :meth:`IsolatedWorker.call` sends one or more argument sets of a hook (a batch) and returns one
  :class:`~odr_plugin_api.sandbox_worker.Outcome` per set, or raises :class:`PluginOverrun` (no answer
  within ``budget`` seconds, or the worker stayed busy with other calls for ``budget`` seconds) or
  :class:`WorkerDied` (the worker exited, or failed to load the plugin). A call returns or raises
  within twice its budget plus at most one worker start.
- Single calls of one hook that arrive from several threads while the worker is busy go together in
  its next round trip (like a group commit), as many as its recent answers say fit in half the
  budget (none after an overrun, until it answers in time again); each caller gets its own outcome.
  It blocks the calling thread up to ``budget``: a server calls it from a thread, never on its event
  loop (the platform: ``PluginHost.off_loop``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec

from odr_plugin_api.sandbox_worker import Answer, Call, Init, Outcome, Ready

log = logging.getLogger(__name__)
WORKER_FILE = str(Path(__file__).with_name("sandbox_worker.py"))
MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""The largest message a worker may send; a longer one counts as the worker dying (it is killed)."""


class PluginOverrun(RuntimeError):
    """The plugin did not answer within its time budget."""


class WorkerDied(RuntimeError):
    """The isolated worker exited (or could not load its plugin) before answering."""


def clean_environment(scratch: str) -> dict[str, str]:
    """The whole environment of a worker: nothing inherited but the locale."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": scratch,
        "TMPDIR": scratch,
    }


MAX_COALESCED = 32
"""Most single calls of one hook sent together in one round trip."""


class _Waiting:
    """One caller's call waiting for the worker."""

    __slots__ = ("hook", "calls", "budget", "outcomes", "error", "done")

    def __init__(self, hook: str, calls: list[dict[str, Any]], budget: float) -> None:
        self.hook, self.calls, self.budget = hook, calls, budget
        self.outcomes: list[Outcome] = []
        self.error: Exception | None = None
        self.done = False


class IsolatedWorker:
    def __init__(self, plugin: str, target: str, *, deny_network: bool, memory_mb: int = 1024,
                 cpu_seconds: int = 600, start_seconds: float = 10.0, net_allow: tuple[str, ...] = ()) -> None:
        """``target``: the plugin's import target (``module`` or ``module:attribute``, its entry point's
        value); ``deny_network``: no network in the worker (policy families); ``memory_mb`` /
        ``cpu_seconds``: its RLIMIT_AS and RLIMIT_CPU; ``start_seconds``: how long starting may take."""
        self.plugin = plugin
        self.target = target
        self.deny_network = deny_network
        self.memory_mb = memory_mb
        self.cpu_seconds = cpu_seconds
        self.start_seconds = start_seconds
        self.net_allow = tuple(net_allow)
        """Internal hosts the ``net`` client in the worker may reach (ODR_OUTBOUND_ALLOW_HOSTS)."""
        self.starts = 0
        """How many worker processes were started (1 + restarts)."""
        self.kills = 0
        """How many were killed for overrunning their budget."""
        self.round_trips = 0
        """Messages answered (a batch is one)."""
        self.coalesced = 0
        """Calls that waited while another was answered and went with the next one in its round trip."""
        self.ready: Ready | None = None
        self._proc: subprocess.Popen | None = None
        self._tx: Connection | None = None
        self._rx: Connection | None = None
        self._scratch: str | None = None
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._queue_lock = threading.Lock()
        self._seconds_per_call = start_seconds  # unknown until it answers: no coalescing before that
        self._closed = False
        self._decoder = msgspec.msgpack.Decoder(Answer)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    # -- calling ---------------------------------------------------------------------------------
    def call(self, hook: str, calls: list[dict[str, Any]], budget: float) -> list[Outcome]:
        me = _Waiting(hook, calls, budget)
        with self._queue_lock:
            self._queue.append(me)
        # Waiting behind another call (or a restart) is bounded by the budget too, so that a call ends
        # within twice its budget plus, at worst, one worker start, however many wait.
        if not self._lock.acquire(timeout=budget):
            with self._queue_lock:
                if me in self._queue:
                    self._queue.remove(me)
            if not me.done:
                raise PluginOverrun(f"{self.plugin}: worker busy (or restarting) for the whole budget of {hook}")
        else:
            try:
                if not me.done:  # else another caller's round trip answered it meanwhile
                    self._lead(me)
            finally:
                self._lock.release()
        if me.error is not None:
            raise me.error
        return me.outcomes

    def _lead(self, me: "_Waiting") -> None:
        """One round trip (the lock held) for ``me`` and, coalesced with it, the single calls of the same
        hook waiting meanwhile, as many as recent answers say fit in half the budget."""
        fit = max(1, min(MAX_COALESCED, int(me.budget / 2 / max(self._seconds_per_call, 1e-9))))
        with self._queue_lock:
            batch = [me]
            if len(me.calls) == 1:
                batch += [w for w in self._queue if w is not me and w.hook == me.hook and len(w.calls) == 1][: fit - 1]
            for w in batch:
                if w in self._queue:
                    self._queue.remove(w)
        calls = [c for w in batch for c in w.calls]
        started = time.monotonic()
        try:
            outcomes = self._round_trip(me.hook, calls, me.budget)
        except (PluginOverrun, WorkerDied) as exc:
            self._seconds_per_call = me.budget  # no coalescing until it answers in time again
            for w in batch:
                w.error, w.done = exc, True
            return
        per_call = (time.monotonic() - started) / len(calls)
        self._seconds_per_call = 0.8 * self._seconds_per_call + 0.2 * per_call
        i = 0
        for w in batch:
            w.outcomes, w.done = outcomes[i:i + len(w.calls)], True
            i += len(w.calls)
        if len(batch) > 1:
            self.coalesced += len(batch) - 1

    def _round_trip(self, hook: str, calls: list[dict[str, Any]], budget: float) -> list[Outcome]:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        deadline = time.monotonic() + budget
        try:
            self._tx.send_bytes(msgspec.msgpack.encode(Call(hook=hook, calls=calls)))
            answered = self._rx.poll(max(0.0, deadline - time.monotonic()))
            answer = self._decoder.decode(self._rx.recv_bytes(MAX_ANSWER_BYTES)) if answered else None
        except (EOFError, OSError, msgspec.DecodeError) as exc:
            self._stop(restart=True)
            raise WorkerDied(f"{self.plugin}: worker exited (or sent no valid answer) during {hook}") from exc
        if answer is None:
            self.kills += 1
            self._stop(restart=True)
            raise PluginOverrun(f"{self.plugin}: no answer to {hook} within {budget * 1000:.0f} ms")
        self.round_trips += 1
        if len(answer.outcomes) != len(calls):
            self._stop(restart=True)
            raise WorkerDied(f"{self.plugin}: worker answered {len(answer.outcomes)} of {len(calls)} calls")
        return answer.outcomes

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker now unless it runs (otherwise the first call starts it); :class:`WorkerDied`
        when it cannot load the plugin."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()

    def _start(self) -> None:
        self._stop()
        self._scratch = tempfile.mkdtemp(prefix=f"odr-plugin-{self.plugin}-")
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", WORKER_FILE, str(to_worker_r), str(from_worker_w)],
                pass_fds=(to_worker_r, from_worker_w),
                env=clean_environment(self._scratch),
                cwd=self._scratch,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # a plugin's prints may hold personal data
                start_new_session=True,
            )
        finally:
            os.close(to_worker_r)
            os.close(from_worker_w)
        self._tx = Connection(to_worker_w, readable=False)
        self._rx = Connection(from_worker_r, writable=False)
        self.starts += 1
        init = Init(plugin=self.plugin, target=self.target, sys_path=[os.path.abspath(p) for p in sys.path],
                    memory_mb=self.memory_mb, cpu_seconds=self.cpu_seconds,
                    deny_network=self.deny_network, net_allow=list(self.net_allow))
        try:
            self._tx.send_bytes(msgspec.msgpack.encode(init))
            if not self._rx.poll(self.start_seconds):
                raise WorkerDied(f"{self.plugin}: worker did not start within {self.start_seconds} s")
            ready = msgspec.msgpack.decode(self._rx.recv_bytes(MAX_ANSWER_BYTES), type=Ready)
        except (EOFError, OSError, msgspec.DecodeError) as exc:
            self._stop()
            raise WorkerDied(f"{self.plugin}: worker exited while starting") from exc
        except WorkerDied:
            self._stop()
            raise
        if ready.error:
            self._stop()
            raise WorkerDied(f"{self.plugin}: the plugin failed to load in its worker ({ready.error})")
        if self.ready is None or self.ready.missing != ready.missing:
            if ready.missing:
                log.warning("plugin %s: isolated worker runs without %s (the system refused); holds %s",
                            self.plugin, ", ".join(ready.missing), ", ".join(ready.limits))
            else:
                log.info("plugin %s: isolated worker started with %s", self.plugin, ", ".join(ready.limits))
        self.ready = ready

    def _restart(self) -> None:
        """Start a new worker in the background after one was killed or died (the next call finds it
        ready, or waits for it within its budget)."""
        try:
            with self._lock:
                if not self._closed and (self._proc is None or self._proc.poll() is not None):
                    self._start()
        except Exception as exc:  # the next call tries again and records the failure
            log.warning("plugin %s: restarting its isolated worker failed (%s)", self.plugin, type(exc).__name__)

    def _stop(self, *, restart: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not refused
                log.error("plugin %s: worker %s did not exit after SIGKILL", self.plugin, proc.pid)
        for conn in (self._tx, self._rx):
            if conn is not None:
                conn.close()
        self._tx = self._rx = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        if restart and not self._closed:
            threading.Thread(target=self._restart, name=f"odr-plugin-restart-{self.plugin}", daemon=True).start()

    def close(self) -> None:
        """Stop the worker (the platform is stopping, or the plugin was unregistered)."""
        self._closed = True
        with self._lock:
            self._stop()
