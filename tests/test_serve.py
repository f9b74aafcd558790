"""Where `cxr-attention app` listens, and that it serves at once on a first run with no terminal.

The server is started as a user starts it: a fresh HOME (no ~/.streamlit/credentials.toml), stdin
not a terminal, no `--headless`. Listening sockets are read from /proc/net/tcp and tcp6.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 180
LINUX = sys.platform.startswith("linux")


@dataclass
class Server:
    """A started `cxr-attention app` and the folders it was given."""

    process: subprocess.Popen
    port: int
    log: Path  # stdout and stderr together
    home: Path  # HOME, fresh
    tmp: Path  # TMPDIR
    cwd: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    """A port free on 127.0.0.1 and on ::1 (the relay binds both)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET6) as probe6:
                probe6.bind(("::1", port))
        except OSError:
            if socket.has_ipv6 and Path("/proc/net/if_inet6").exists():
                continue
        return port
    raise RuntimeError("no free port on both loopback addresses")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def serving(
    root: Path,
    runs: Path,
    *flags: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[Server]:
    """`cxr-attention [--debug] app --runs runs FLAGS` until the block ends, as a user starts it,
    on `port` (a free one when None).

    `--debug` among `flags` goes before `app` (it is the command line's global flag).
    """
    folders = {name: root / name for name in ("home", "tmp", "cwd")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    environ |= {"HOME": str(folders["home"]), "TMPDIR": str(folders["tmp"])} | (env or {})
    environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1])])
    port = free_port() if port is None else port
    front = ["--debug"] if "--debug" in flags else []
    rest = [f for f in flags if f != "--debug"]
    log = root / "server.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cxr_attention.train.cli", *front, "app", "--runs", str(runs)]
            + ["--port", str(port), *rest],
            env=environ,
            cwd=folders["cwd"],
            stdin=subprocess.DEVNULL,  # not a terminal: a prompt would wait forever
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so its children stop with it
        )
    server = Server(process, port, log, **folders)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not healthy(server.url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not start: {server.output()[-800:]}")
            time.sleep(0.5)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def sockets_on(port: int) -> set[tuple[str, str]]:
    """(address, state) of the TCP sockets whose local port is `port`, from /proc/net/tcp and
    /proc/net/tcp6; states as the kernel writes them (0A LISTEN, 06 TIME_WAIT, 05 FIN_WAIT2)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) != port:
                continue
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, width, 8))
            found.add((str(ipaddress.ip_address(raw)), state))
    return found


def listening(port: int) -> set[str]:
    """Addresses with a TCP socket listening on `port`."""
    return {address for address, state in sockets_on(port) if state == "0A"}


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """An empty runs folder: the server starts; the page would say how to get models."""
    return tmp_path_factory.mktemp("runs")


@pytest.mark.skipif(not LINUX, reason="reads /proc/net")
def test_default_serves_this_machine_only_at_once(tmp_path, runs):
    with serving(tmp_path, runs) as server:
        addresses = listening(server.port)
        expected = {"127.0.0.1", "::1"} if ipv6_loopback() else {"127.0.0.1"}
        assert addresses == expected
        if ipv6_loopback():  # the relay answers like Streamlit itself
            assert healthy(f"http://[::1]:{server.port}")
            with urllib.request.urlopen(f"http://[::1]:{server.port}/", timeout=10) as page:
                assert b"<title>" in page.read()
        assert "warning" not in server.output()
        assert "this machine only" in server.output()
    # no first-run prompt was answered, and nothing was written in the home folder
    assert not (server.home / ".streamlit" / "credentials.toml").exists()
    assert "email" not in server.output().lower()


@pytest.mark.skipif(not LINUX, reason="reads /proc/net")
def test_host_all_interfaces_warns(tmp_path, runs):
    with serving(tmp_path, runs, "--host", "0.0.0.0") as server:
        assert listening(server.port) == {"0.0.0.0"}
        warnings = [line for line in server.output().splitlines() if "warning" in line]
        assert len(warnings) == 1
        assert "0.0.0.0" in warnings[0] and "no password" in warnings[0]


def test_the_command_line_given_to_streamlit():
    from cxr_attention.app.settings import MAX_UPLOAD_MB
    from cxr_attention.train.commands.app import streamlit_command

    def flags(command: list[str]) -> dict[str, str]:
        end = command.index("--")
        return dict(zip(command[5:end:2], command[6:end:2], strict=True))

    default = flags(streamlit_command(Path("runs"), 8765, headless=False))
    assert default["--server.address"] == "127.0.0.1"
    assert default["--server.showEmailPrompt"] == "false"  # serves at once on a first run
    assert "--server.headless" not in default  # Streamlit opens a browser where there is a display
    assert default["--server.enableXsrfProtection"] == "true"
    assert default["--server.maxUploadSize"] == str(MAX_UPLOAD_MB)
    assert "--logger.level" not in default
    chosen = flags(streamlit_command(Path("runs"), 8765, True, host="0.0.0.0", debug=True))
    assert chosen["--server.address"] == "0.0.0.0"
    assert chosen["--server.headless"] == "true"
    assert chosen["--logger.level"] == "debug"


def test_the_checkout_config_listens_on_this_machine_only():
    """`streamlit run app/main.py` from the checkout reads .streamlit/config.toml."""
    import tomllib

    from cxr_attention.app.settings import LOOPBACK_HOST, MAX_UPLOAD_MB

    config = Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml"
    server = tomllib.loads(config.read_text())["server"]
    assert server["address"] == LOOPBACK_HOST
    assert server["showEmailPrompt"] is False and "headless" not in server
    assert server["maxUploadSize"] == MAX_UPLOAD_MB
    assert server.get("enableXsrfProtection", True) is True


@pytest.mark.parametrize(
    ("address", "reachable"),
    [
        (None, True),  # Streamlit's default: every interface
        ("", True),
        ("0.0.0.0", True),
        ("::", True),
        ("192.0.2.7", True),
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("::1", False),
        ("[::1]", False),
        ("localhost", False),
        ("LocalHost", False),
    ],
)
def test_which_addresses_are_reachable_from_the_network(address, reachable):
    from cxr_attention.app.settings import reachable_from_network

    assert reachable_from_network(address) is reachable


def test_bad_hosts_and_busy_ports_are_one_line_errors(tmp_path):
    from cxr_attention.core.errors import ConfigError
    from cxr_attention.train.cli import main
    from cxr_attention.train.commands.app import check_port

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} is already in use"):
            check_port(port)
    with pytest.raises(ConfigError, match="cannot listen on 192.0.2.7"):
        check_port(free_port(), "192.0.2.7")  # TEST-NET-1: never an address of this machine
    with pytest.raises(ConfigError, match="not an address or a name"):
        check_port(free_port(), "no-such-host.invalid")
    assert main(["app", "--runs", str(tmp_path), "--host", " "]) == 2


def test_sidebar_says_when_the_app_is_reachable_from_the_network(tmp_path, monkeypatch):
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    from cxr_attention.app.settings import RUNS_ENV

    monkeypatch.setenv(RUNS_ENV, str(tmp_path))  # no models: the page stops after the sidebar
    main = Path(__file__).resolve().parents[1] / "app" / "main.py"
    original = config.get_option("server.address")
    try:
        for address, shown in (("0.0.0.0", True), ("127.0.0.1", False), ("::1", False)):
            config.set_option("server.address", address)
            at = AppTest.from_file(str(main), default_timeout=120).run()
            assert not at.exception
            notices = [
                w.value for w in at.sidebar.warning if "Reachable from the network" in w.value
            ]
            assert bool(notices) is shown, address
            if shown:
                assert "0.0.0.0" in notices[0] and "no password" in notices[0]
    finally:
        config.set_option("server.address", original)


@pytest.mark.skipif(not LINUX, reason="reads /proc/net")
def test_an_app_started_again_on_the_port_of_one_just_stopped_serves(tmp_path, runs):
    """A stopped app's connections linger on its port (TIME_WAIT: the server closed first); a
    user who starts the app again on that port gets the app, not "port already in use"."""
    with serving(tmp_path / "first", runs) as first:
        browser = socket.create_connection(("127.0.0.1", first.port))  # a tab left open
    with browser:
        assert browser.recv(1) == b""  # the stopped server closed the connection
    lingering = {state for _address, state in sockets_on(first.port)}
    assert "06" in lingering and "0A" not in lingering  # TIME_WAIT, nothing listening
    with serving(tmp_path / "second", runs, port=first.port) as second:
        assert healthy(second.url)
        assert "this machine only" in second.output() and "in use" not in second.output()
