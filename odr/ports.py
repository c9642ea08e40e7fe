"""Refusing to start a server on a port another process holds.

granian binds its listening socket with ``SO_REUSEPORT``, so a second ``odr serve`` / ``odr demo`` on a
port that another instance (with the same option) already listens on would start without an error and
the kernel would split the requests between the two. :func:`port_in_use` binds the address once
WITHOUT ``SO_REUSEPORT`` (with ``SO_REUSEADDR``, so connections of a stopped server still in TIME_WAIT
do not count): that fails whenever any other socket is bound or listening there.
"""

from __future__ import annotations

import socket


def port_in_use(host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound now, else the one-line reason (to print before exiting 1)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}:{port}: the address does not resolve ({exc.strerror}); set ODR_HOST"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return (f"port {port} on {host} is already in use by another process ({exc.strerror}): stop that "
                    f"process (another odr serve or odr demo?) or set ODR_PORT to a free port")
    return None
