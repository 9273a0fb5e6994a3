"""`dlforge serve` / `dlforge ui` bind their sockets once, as asyncio would for uvicorn, and
hand them to uvicorn: a bind failure is one line and exit 1, and no other process can take the
port between a check and uvicorn's bind. Every port here is a free one (bound to port 0)."""

from __future__ import annotations

import errno
import socket

import pytest
import uvicorn

from dlforge.cli import main
from dlforge.cli.listen import Where, bind_listeners, run_uvicorn
from dlforge.errors import DlforgeError


def _ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _ipv6(), reason="needs IPv6 on the loopback")


@pytest.fixture
def held():
    """A listening socket on 127.0.0.1 (a dashboard already running); yields its port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _localhost_v6_first(monkeypatch):
    """/etc/hosts with '::1 localhost' first (Debian's default): ::1, then 127.0.0.1."""
    real = socket.getaddrinfo

    def gai(host, port, *args, **kwargs):
        if host != "localhost":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
    monkeypatch.setattr(socket, "getaddrinfo", gai)


@needs_ipv6
def test_any_ipv6_address_serves_beside_a_server_on_127_0_0_1(tmp_path, held, served, capsys):
    """IPv6-only, as uvicorn binds it: the check refused '::' there (dual stack)."""
    assert main(["-w", str(tmp_path), "ui", "--host", "::", "--port", str(held)]) == 0
    assert capsys.readouterr().err.endswith(f" on http://[::]:{held}\n")  # it said http://:::PORT
    assert [(run["addresses"], run["other_listener"]) for run in served] == [
        ([("::", held, 0, 0)], "EADDRINUSE")]


@needs_ipv6
def test_localhost_binds_each_address_and_fails_on_the_held_one(tmp_path, held, served, capsys,
                                                                 monkeypatch):
    """The check bound ::1 only and passed; uvicorn then failed on 127.0.0.1 and exited 3."""
    _localhost_v6_first(monkeypatch)
    assert main(["-w", str(tmp_path), "ui", "--host", "localhost", "--port", str(held)]) == 1
    assert capsys.readouterr().err == (
        f"error: --port: cannot listen on localhost:{held} (address 127.0.0.1) (Address already "
        f"in use); another server (a dlforge ui or serve?) may hold it: choose another --port\n")
    assert served == []
    with socket.socket(socket.AF_INET6) as again:  # the ::1 socket bound first was closed
        again.bind(("::1", held))


@needs_ipv6
def test_localhost_and_every_interface_get_a_socket_per_address(monkeypatch):
    _localhost_v6_first(monkeypatch)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for host, names in (("localhost", [("::1", port, 0, 0), ("127.0.0.1", port)]),
                        ("", [("0.0.0.0", port), ("::", port, 0, 0)])):  # "" is not looked up
        sockets = bind_listeners(Where(host, port))
        try:
            assert sorted(s.getsockname() for s in sockets) == sorted(names)
            assert [s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) for s in sockets
                    if s.family == socket.AF_INET6] == [1]
        finally:
            for s in sockets:
                s.close()


def test_uvicorn_gets_the_bound_sockets_with_the_options_and_no_one_can_take_them(tmp_path, served):
    """A port taken between the check and uvicorn's bind printed the banner and exited 3."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["-w", str(tmp_path), "serve", "--port", str(port), "--log-level", "warning",
                 "--loop", "asyncio", "--http", "h11"]) == 0
    (run,) = served
    config = run["config"]
    assert (run["addresses"], run["other_listener"]) == ([("127.0.0.1", port)], "EADDRINUSE")
    assert (config.host, config.port, config.log_level, config.loop, config.http,
            config.access_log) == ("127.0.0.1", port, "warning", "asyncio", "h11", False)
    with socket.socket() as again:  # closed when the server stopped
        again.bind(("127.0.0.1", port))


def test_a_port_below_1024_without_root_names_the_port(tmp_path, capsys, monkeypatch):
    def bind(self, address):
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(socket.socket, "bind", bind)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: pytest.fail("started"))
    assert main(["-w", str(tmp_path), "ui", "--port", "80"]) == 1
    assert capsys.readouterr().err == (
        "error: --port: cannot listen on 127.0.0.1:80 (Permission denied); ports below 1024 "
        "need root (or CAP_NET_BIND_SERVICE); choose a port >= 1024\n")


def test_serve_names_the_config_key_the_address_came_from(tmp_path, held, capsys, monkeypatch):
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: pytest.fail("started"))
    config = tmp_path / "serve.yaml"
    config.write_text(f"serve: {{port: {held}}}\n")
    in_use = ("cannot listen on 127.0.0.1:{port} (Address already in use); another server "
              "(a dlforge ui or serve?) may hold it: choose another {name}\n")
    for args, name in ((["-c", str(config)], "serve.port"), (["-s", f"serve.port={held}"], "serve.port"),
                       (["-c", str(config), "--port", str(held)], "--port")):
        assert main(["-w", str(tmp_path), "serve", *args]) == 1
        assert capsys.readouterr().err == f"error: {name}: " + in_use.format(port=held, name=name)
    assert main(["-w", str(tmp_path), "serve", "-s", "serve.host=nosuch.invalid"]) == 1
    assert capsys.readouterr().err.startswith("error: serve.host: 'nosuch.invalid' does not resolve (")


def test_a_server_that_stops_before_serving_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    """uvicorn exits 3 (drift's code) when the app's start-up fails; it logs why."""
    def run(self, sockets=None):
        raise SystemExit(3)
    monkeypatch.setattr(uvicorn.Server, "run", run)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["-w", str(tmp_path), "ui", "--port", str(port)]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: the server on 127.0.0.1:{port} stopped before it served (its log above says why)")


def test_an_address_of_another_machine_names_the_host():
    with pytest.raises(DlforgeError) as caught:
        bind_listeners(Where("192.0.2.1", 8080, "serve.host", "serve.port"))
    assert str(caught.value) == ("serve.host: cannot listen on 192.0.2.1:8080 (Cannot assign "
                                 "requested address); give an address of this machine, "
                                 "e.g. 127.0.0.1")


@pytest.mark.parametrize("started", [True, False])
def test_ctrl_c_is_a_stop_whether_or_not_the_server_had_started(monkeypatch, started):
    """Ctrl-C is `serve`'s and `ui`'s normal stop: no 'stopped before it served' line, the
    sockets closed."""
    def interrupted(self, sockets=None):
        self.started = started
        raise KeyboardInterrupt

    monkeypatch.setattr(uvicorn.Server, "run", interrupted)
    socks = bind_listeners(Where("127.0.0.1", 0))
    run_uvicorn(object(), socks, Where("127.0.0.1", 0), log_level="error")
    assert [s.fileno() for s in socks] == [-1] * len(socks)
