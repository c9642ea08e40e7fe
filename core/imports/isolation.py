"""Import files are read in a separate process, never in the web process (issue 23).

Each read (an upload's check, a preview, a run's rows) starts one short-lived child process
(``python -m core.imports.isolation``) that gets the file on its standard input and answers on its
standard output with length-prefixed msgpack frames. The child reads with :mod:`core.imports.reading`
(every limit checked while streaming), under an address-space limit (``ODR_IMPORT_WORKER_MEMORY_MB``)
and a CPU-time limit, at a lower CPU priority (nice 10) than the web worker and the database, with an
environment holding no credentials; the parent kills it when the time it
spent waiting for the child exceeds ``ODR_IMPORT_MAX_SECONDS`` (the time the parent spends writing a
batch is not counted), when it stops early (a preview), or when a frame is larger than
:data:`MAX_FRAME`. A process per read rather than a pool: whatever a hostile file made the child
allocate leaves with it, and a read that overruns is ended by killing exactly that process.

What crosses the boundary is data, never code: msgpack of strings, numbers, booleans and None, with
dates and times as typed extensions (no pickle).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import struct
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from core.imports.reading import FileRefused, ImportLimits, LimitExceeded, Table

MAX_FRAME = 64 * 1024 * 1024
"""Largest frame the parent takes (a frame holds at most :data:`FRAME_ROWS` rows and about
:data:`FRAME_CHARS` characters, so a legitimate one is far smaller)."""
FRAME_ROWS = 500
FRAME_CHARS = 4 * 1024 * 1024
PREVIEW_CHARS = 4096
"""A preview's cells are cut to this many characters in the child (longer ones still fail the row's
length checks: every field's maximum is shorter)."""
_HEADER = struct.Struct(">I")
log = logging.getLogger(__name__)
_DATETIME, _DATE, _TIME, _TIMEDELTA = 1, 2, 3, 4


class Inspection(msgspec.Struct, kw_only=True):
    """What the child found: the header, the rows read (a preview's first ones) and, for a scan, how
    many rows follow the header."""

    format: str
    header: list[str]
    rows: list[tuple[int, list[Any]]] = []
    total: int | None = None


def _enc_hook(value: Any) -> Any:
    raise TypeError(f"cannot send {type(value).__name__}")


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return msgspec.msgpack.Ext(_DATETIME, value.isoformat().encode())
    if isinstance(value, dt.date):
        return msgspec.msgpack.Ext(_DATE, value.isoformat().encode())
    if isinstance(value, dt.time):
        return msgspec.msgpack.Ext(_TIME, value.isoformat().encode())
    if isinstance(value, dt.timedelta):
        return msgspec.msgpack.Ext(_TIMEDELTA, repr(value.total_seconds()).encode())
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _ext_hook(code: int, data: memoryview) -> Any:
    text = bytes(data).decode()
    if code == _DATETIME:
        return dt.datetime.fromisoformat(text)
    if code == _DATE:
        return dt.date.fromisoformat(text)
    if code == _TIME:
        return dt.time.fromisoformat(text)
    if code == _TIMEDELTA:
        return dt.timedelta(seconds=float(text))
    raise ValueError(f"unknown extension {code}")


_decoder = msgspec.msgpack.Decoder(ext_hook=_ext_hook)


# -- the child ----------------------------------------------------------------------------------------

def _child(argv: list[str]) -> int:
    import resource

    from core.imports.reading import read_table

    job = msgspec.json.decode(argv[0])
    limits = msgspec.convert(job["limits"], ImportLimits)
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    cpu = int(limits.seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    os.nice(10)  # the web worker and the database go first: a province's import waits, not the others' requests
    out = sys.stdout.buffer

    def send(message: dict) -> None:
        body = msgspec.msgpack.encode(message, enc_hook=_enc_hook)
        out.write(_HEADER.pack(len(body)) + body)
        out.flush()

    content = sys.stdin.buffer.read(limits.upload_bytes + 1)
    try:
        table = read_table(job["filename"], content, limits)
        send({"header": table.header, "format": table.format})
        mode = job["mode"]
        if mode == "scan":
            total = 0
            for _ in table.rows():
                total += 1
            send({"total": total})
        elif mode == "preview":
            rows = []
            for line, cells in table.rows():
                if len(rows) >= job["rows"]:
                    break
                rows.append((line, [_cell(c[:PREVIEW_CHARS] if isinstance(c, str) else c) for c in cells]))
            send({"rows": rows})
        elif mode == "rows":
            total = table.estimated_rows() if table.format == "xlsx" else sum(1 for _ in table.rows())
            send({"total": total})
            batch: list = []
            chars = 0
            for line, cells in table.rows():
                batch.append((line, [_cell(c) for c in cells]))
                chars += sum(len(c) for c in cells if isinstance(c, str))
                if len(batch) >= FRAME_ROWS or chars >= FRAME_CHARS:
                    send({"rows": batch})
                    batch, chars = [], 0
            if batch:
                send({"rows": batch})
        send({"done": True})
    except LimitExceeded as exc:
        send({"limit": exc.limit, "value": exc.value, "found": exc.found})
    except FileRefused as exc:
        send({"field": exc.field, "problem": exc.problem})
    except MemoryError:
        send({"limit": "ODR_IMPORT_WORKER_MEMORY_MB", "value": f"{limits.memory_bytes // (1024 * 1024)} MiB",
              "found": f"reading needs more than {limits.memory_bytes // (1024 * 1024)} MiB"})
    return 0


# -- the parent ---------------------------------------------------------------------------------------

def _environment() -> dict[str, str]:
    """What the child inherits: where Python finds the platform, and nothing else (no credentials)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "HOME")}
    keep["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return keep


class _Child:
    """One child reading one file; :meth:`frames` yields its messages, the limits enforced."""

    def __init__(self, limits: ImportLimits) -> None:
        self.limits = limits
        self.proc: asyncio.subprocess.Process | None = None
        self.waited = 0.0
        self.pid: int | None = None

    async def start(self, mode: str, filename: str, content: bytes, rows: int = 0) -> None:
        job = msgspec.json.encode({"mode": mode, "filename": filename, "rows": rows, "limits": self.limits}).decode()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "core.imports.isolation", job, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=_environment(),
            limit=1024 * 1024)
        self.pid = self.proc.pid
        self._feed = asyncio.get_running_loop().create_task(self._write(content))

    async def _write(self, content: bytes) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(content)
            await self.proc.stdin.drain()
            self.proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):  # the child stopped reading: it answers why
            pass

    def _timeout(self) -> LimitExceeded:
        return LimitExceeded("ODR_IMPORT_MAX_SECONDS", f"{self.limits.seconds:g} s", found=(
            f"reading the file took more than {self.limits.seconds:g} s"))

    async def frame(self) -> dict:
        assert self.proc is not None and self.proc.stdout is not None
        left = self.limits.seconds - self.waited
        started = time.monotonic()
        try:
            async with asyncio.timeout(max(left, 0.001)):
                head = await self.proc.stdout.readexactly(_HEADER.size)
                (size,) = _HEADER.unpack(head)
                if size > MAX_FRAME:
                    raise FileRefused("file", "the reader answered more than it may")
                body = await self.proc.stdout.readexactly(size)
        except TimeoutError:
            raise self._timeout() from None
        except asyncio.IncompleteReadError:
            code = await self.proc.wait()
            if code in (-9, -24):  # killed, out of CPU time
                raise self._timeout() from None
            if code >= 0:  # an error of the reader itself (its output is not kept: it may quote the file)
                log.warning("import reader exited with %s without an answer", code)
                raise FileRefused("file", f"could not be read (the reader failed, exit {code})") from None
            raise LimitExceeded("ODR_IMPORT_WORKER_MEMORY_MB", f"{self.limits.memory_bytes // (1024 * 1024)} MiB",
                                found=f"the reader ended without an answer (exit {code}); reading may need more"
                                      f" than {self.limits.memory_bytes // (1024 * 1024)} MiB") from None
        finally:
            self.waited += time.monotonic() - started
        message = _decoder.decode(body)
        if "limit" in message:
            raise LimitExceeded(message["limit"], message["value"], found=message["found"])
        if "field" in message:
            raise FileRefused(message["field"], message["problem"])
        return message

    async def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        self._feed.cancel()
        await self.proc.wait()


async def inspect(filename: str, content: bytes, limits: ImportLimits, *, rows: int = 0,
                  scan: bool = False) -> Inspection:
    """The file's header read in a child; ``scan``: every row read too (each limit checked) and counted
    (``total``); ``rows``: the first so many non-empty rows (cells cut to :data:`PREVIEW_CHARS`).
    :class:`LimitExceeded` or :class:`FileRefused` as the child found."""
    child = _Child(limits)
    await child.start("scan" if scan else "preview", filename, content, rows)
    try:
        first = await child.frame()
        found = Inspection(format=first["format"], header=first["header"])
        while True:
            message = await child.frame()
            if "done" in message:
                return found
            if "total" in message:
                found.total = message["total"]
            if "rows" in message:
                found.rows = [(line, cells) for line, cells in message["rows"]]
    finally:
        await child.close()


async def rows(table: Table) -> AsyncIterator[tuple[str, Any]]:
    """``("total", n)`` (rows after the header: counted for a CSV, the XLSX's recorded dimension or
    None), then ``("rows", [(line, cells), ...])`` batches of the table's non-empty rows, read in a child
    under ``table.limits``; :class:`LimitExceeded` or :class:`FileRefused` when reading fails on the way."""
    child = _Child(table.limits)
    await child.start("rows", "file." + table.format, table.content)
    try:
        await child.frame()  # the header (the caller has it)
        while True:
            message = await child.frame()
            if "done" in message:
                return
            if "total" in message:
                yield "total", message["total"]
            if "rows" in message:
                yield "rows", [(line, cells) for line, cells in message["rows"]]
    finally:
        await child.close()


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
