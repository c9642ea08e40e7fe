"""The checked outbound client that implements :class:`odr_plugin_api.net.Network`: used by the platform
(``core.notifications.outbound.Outbound``, handed to in-process channel plugins as ``net``) and by the
isolated plugin worker (handed to an isolated channel plugin as ``net``, built from the operator's
allow-list sent with the worker's start message).

Contract:
- :meth:`CheckedNetwork.resolve` resolves a host and checks EVERY address it resolves to: a destination
  whose addresses include a refused one (:func:`refused_kind`: loopback, link-local and so cloud
  metadata, private, shared/CGNAT, unspecified, multicast, reserved, not globally routable, and IPv6
  forms embedding such an IPv4 address) raises :class:`~odr_plugin_api.net.DestinationRefused`, unless
  the host is allowed by name (``host`` for any port, ``host:port`` for one). Numeric hosts are checked
  the same way.
- :meth:`CheckedNetwork.connect` connects to one of the checked addresses themselves (no second DNS
  lookup between check and connect, so no DNS rebinding); :meth:`CheckedNetwork.request` sends
  HTTP(S) over such a connection (TLS verifies the certificate for the host name) and follows at most
  :data:`MAX_REDIRECTS` redirects, each resolved and checked again (301/302/303 turn into a GET without
  body, as browsers and urllib do; 307/308 repeat the method and body).
- Plain blocking code, safe to share between threads; standard library only.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

from odr_plugin_api.net import DestinationRefused, HttpAnswer

MAX_REDIRECTS = 3
MAX_ANSWER_BYTES = 64 * 1024
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def refused_kind(ip: Address) -> str | None:
    """Why the platform does not send to ``ip`` (``"loopback"``, ``"private"``, ...), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and (kind := refused_kind(embedded)):
            return kind
    for kind, hit in (("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback),
                      ("link-local (cloud metadata)", ip.is_link_local), ("multicast", ip.is_multicast),
                      ("shared (CGNAT)", isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED),
                      ("private", ip.is_private), ("reserved", ip.is_reserved), ("not globally routable", not ip.is_global)):
        if hit:
            return kind
    return None


def _ip(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


class CheckedNetwork:
    """The checked client (see the module docs); ``allow``: host names (``host`` or ``host:port``,
    lower-case) the operator allows to resolve to internal addresses."""

    def __init__(self, allow: frozenset[str] = frozenset()) -> None:
        self.allow = frozenset(a.strip().lower() for a in allow if a.strip())

    def allowed(self, host: str, port: int) -> bool:
        host = host.lower().strip("[]")
        return host in self.allow or f"{host}:{port}" in self.allow or f"[{host}]:{port}" in self.allow

    def check(self, host: str, port: int, addresses: list[Address]) -> None:
        """Raise :class:`DestinationRefused` when any of ``addresses`` (of ``host``) is refused."""
        if self.allowed(host, port):
            return
        for ip in addresses:
            if kind := refused_kind(ip):
                raise DestinationRefused(
                    f"destination {host}:{port} refused: it resolves to a {kind} address; an operator may "
                    f"allow it by name in ODR_OUTBOUND_ALLOW_HOSTS")  # the address itself is not told

    def resolve(self, host: str, port: int) -> list[tuple[int, Address]]:
        """The checked (family, address) pairs of ``host`` (see :meth:`check`); ``OSError`` when it does not resolve."""
        bare = host.strip("[]")
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        found: list[tuple[int, Address]] = []
        for family, _, _, _, sockaddr in infos:
            ip = _ip(sockaddr[0])
            if ip is not None and (family, ip) not in found:
                found.append((family, ip))
        if not found:
            raise OSError(f"{host} has no address")
        self.check(host, port, [ip for _, ip in found])
        return found

    def connect(self, host: str, port: int, timeout: float = 10.0) -> socket.socket:
        """A TCP connection to a checked address of ``host`` (the first that answers)."""
        error: OSError | None = None
        for family, ip in self.resolve(host, port):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect((str(ip), port))
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error or OSError(f"no address of {host} answered")

    def request(self, method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 10.0) -> HttpAnswer:
        """One HTTP(S) request to a checked destination, following at most :data:`MAX_REDIRECTS` redirects."""
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._once(method, url, body, headers or {}, timeout)
            location = answer.headers.get("location")
            if answer.status not in (301, 302, 303, 307, 308) or not location:
                return answer
            url = urljoin(url, location)
            if answer.status in (301, 302, 303) and method != "HEAD":
                method, body = "GET", None
                headers = {k: v for k, v in (headers or {}).items() if k.lower() not in ("content-type", "content-length")}
        raise DestinationRefused(f"more than {MAX_REDIRECTS} redirects")

    def _once(self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float) -> HttpAnswer:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DestinationRefused(f"only http and https URLs are sent to (not {parts.scheme or 'a relative'} URL)")
        host = parts.hostname
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise DestinationRefused("the URL's port is not a number from 1 to 65535") from None
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = kind(host, port, timeout=timeout)
        # the connection (and, for https, the TLS handshake for ``host``) goes over the checked address
        conn._create_connection = lambda address, t=None, source=None: self.connect(host, port, timeout)  # type: ignore[attr-defined]
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            content = response.read(MAX_ANSWER_BYTES)
            return HttpAnswer(status=response.status, headers={k.lower(): v for k, v in response.getheaders()},
                              body=content)
        except http.client.HTTPException as exc:  # a malformed answer: a failed connection to the caller
            raise OSError(f"bad HTTP answer ({type(exc).__name__})") from None
        finally:
            conn.close()
