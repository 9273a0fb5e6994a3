"""Listening sockets for `dlforge serve` and `dlforge ui`: bound here, once, then handed to uvicorn.

Binding before uvicorn starts turns every bind failure into one error line (uvicorn printed its
banner, logged the error and exited 3, the exit code `dlforge drift` gives for drift), and
handing the same sockets to uvicorn leaves no window in which another process could take the
port between a check and uvicorn's own bind. The sockets are bound as asyncio's
``loop.create_server(host=..., port=...)`` binds them for uvicorn: every address the host
resolves to (``AI_PASSIVE``, ``""`` meaning all interfaces), IPv6 sockets IPv6-only,
``SO_REUSEADDR``.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dlforge.errors import DlforgeError

if TYPE_CHECKING:
    from fastapi import FastAPI


@dataclass(frozen=True)
class Where:
    """The address to listen on and the names the user gave it by (``--host`` or ``serve.host``)."""

    host: str
    port: int
    host_name: str = "--host"
    port_name: str = "--port"

    @property
    def url(self) -> str:
        """``http://HOST:PORT``, an IPv6 address in brackets, ``""`` (every interface) as 0.0.0.0.

        Example:
            >>> Where("::1", 8000).url, Where("", 8000).url
            ('http://[::1]:8000', 'http://0.0.0.0:8000')
        """
        host = f"[{self.host}]" if ":" in self.host else self.host or "0.0.0.0"
        return f"http://{host}:{self.port}"


def bind_listeners(where: Where) -> list[socket.socket]:
    """Bind a listening socket to every address `where.host` resolves to, as asyncio would
    for uvicorn. They listen at once: on Linux two sockets with ``SO_REUSEADDR`` may both bind
    a port that nothing listens on yet, so only listening claims it.

    An address of a family this machine has no support for (``EADDRNOTAVAIL``, e.g. ``::1``
    with IPv6 off) is skipped, as asyncio skips it, while another address is left.

    Args:
        where: host, port, and the option or key names to blame in a message.

    Returns:
        The listening sockets; the caller closes them (`run_uvicorn` does).

    Raises:
        DlforgeError: one line naming `where.host_name` or `where.port_name`, the address and
            the fix; no socket is left open.

    Example:
        >>> socks = bind_listeners(Where("127.0.0.1", 8080))  # doctest: +SKIP
        >>> [s.getsockname() for s in socks]  # doctest: +SKIP
        [('127.0.0.1', 8080)]
    """
    bound: list[socket.socket] = []
    unavailable = None
    try:
        for family, kind, proto, _, address in _addresses(where):
            try:
                sock = socket.socket(family, kind, proto)
            except OSError:
                continue  # a family this machine cannot open: asyncio skips it too
            bound.append(sock)
            try:
                _bind(sock, family, address)
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:
                    raise DlforgeError(_problem(where, address, exc)) from exc
                bound.pop().close()
                unavailable = (address, exc)
        if not bound:
            address, exc = unavailable or ((where.host, where.port), OSError(0, "no address found"))
            raise DlforgeError(_problem(where, address, exc))
    except BaseException:
        for sock in bound:
            sock.close()
        raise
    return bound


def run_uvicorn(app: FastAPI, sockets: list[socket.socket], where: Where, **options: Any) -> None:
    """Run `app` with uvicorn on the already bound `sockets` until interrupted; close them.

    Args:
        app: the ASGI app.
        sockets: from `bind_listeners`.
        where: the address they were bound for (uvicorn's config keeps it).
        **options: uvicorn.Config options (log_level, loop, http, access_log).

    Raises:
        DlforgeError: the server stopped before it started serving (uvicorn logged why).

    Example:
        >>> run_uvicorn(app, bind_listeners(where), where, log_level="info")  # doctest: +SKIP
    """
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=where.host, port=where.port, **options))
    interrupted = False
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:  # as uvicorn.run: Ctrl+C during start-up or shutdown is a stop
        interrupted = True
    except SystemExit:  # uvicorn exits 3 (drift's exit code) when the app's start-up fails
        pass
    finally:
        for sock in sockets:
            sock.close()
    if not server.started and not interrupted:
        raise DlforgeError(f"the server on {where.host}:{where.port} stopped before it served "
                           f"(its log above says why)")


def _addresses(where: Where) -> list[tuple]:
    host = None if where.host == "" else where.host  # "" is every interface, as in asyncio
    try:
        found = socket.getaddrinfo(host, where.port, socket.AF_UNSPEC, socket.SOCK_STREAM,
                                   0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise DlforgeError(f"{where.host_name}: {where.host!r} does not resolve ({exc.strerror}); "
                           f"give an address of this machine, e.g. 127.0.0.1") from exc
    return list(dict.fromkeys(found))  # asyncio binds each distinct result once


def _bind(sock: socket.socket, family: int, address: tuple) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio on POSIX
    if family == socket.AF_INET6:  # no dual stack: "::" must not also take 0.0.0.0's port
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(address)
    sock.listen()  # uvicorn's create_server(sock=...) listens again with its backlog


def _problem(where: Where, address: tuple, exc: OSError) -> str:
    at = f"{where.host or repr('')}:{where.port}"
    if address[0] != where.host:  # a name, or "" (every interface): say which address failed
        at += f" (address {address[0]})"
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        return (f"{where.port_name}: cannot listen on {at} ({reason}); another server (a dlforge "
                f"ui or serve?) may hold it: choose another {where.port_name}")
    if exc.errno in (errno.EACCES, errno.EPERM) and where.port < 1024:
        return (f"{where.port_name}: cannot listen on {at} ({reason}); ports below 1024 need "
                f"root (or CAP_NET_BIND_SERVICE); choose a port >= 1024")
    return (f"{where.host_name}: cannot listen on {at} ({reason}); give an address of this "
            f"machine, e.g. 127.0.0.1")
