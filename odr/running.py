"""Running one command against the platform: a started :class:`~core.runtime.Platform` for the
command's duration, and JSON output.

Contract: :func:`run_with_platform` starts a platform (database connected, shared schema migrated,
plugins recorded), awaits the command and always stops it; the command's result is the exit code.
:func:`print_json` writes a value as indented JSON to stdout.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Awaitable, Callable

import msgspec

from core.runtime import Platform


def print_json(value) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")


def run_with_platform(fn: Callable[[Platform], Awaitable[int]]) -> int:
    async def main() -> int:
        platform = Platform()
        await platform.start()
        try:
            return await fn(platform)
        finally:
            await platform.stop()

    return asyncio.run(main())
