"""Run the Streamlit server as a child process, and relay IPv6 loopback connections to it.

Streamlit binds one address (`server.address`). To listen on this machine only, `cxr-attention
app` binds it to 127.0.0.1 and relays [::1]:PORT to it here, so that `http://localhost:PORT` works
wherever `localhost` resolves to ::1 first, without listening on any other interface.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import subprocess
import threading
from collections.abc import Mapping, Sequence
from contextlib import suppress

from cxr_attention.core.errors import ConfigError

IPV6_LOOPBACK = "::1"
# No IPv6 on this machine (or on its loopback interface): the relay is simply left out.
_NO_IPV6 = {errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT}
_CHUNK = 64 * 1024


class LoopbackRelay:
    """Listens on [::1]:port and pipes every connection to 127.0.0.1:port, in a daemon thread."""

    def __init__(self, listener: socket.socket, port: int) -> None:
        self._listener = listener
        self._port = port
        self._thread = threading.Thread(target=self._run, name="ipv6-relay", daemon=True)

    @classmethod
    def bind(cls, port: int) -> LoopbackRelay | None:
        """A relay listening on [::1]:port; None where there is no IPv6 loopback.

        Raises ConfigError when another program already listens there.
        """
        if not socket.has_ipv6:
            return None
        try:
            listener = socket.create_server((IPV6_LOOPBACK, port), family=socket.AF_INET6)
        except OSError as exc:
            if exc.errno in _NO_IPV6:
                return None
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} is already in use on [::1] (another app running?): "
                    f"pass --port {port + 1}"
                ) from None
            raise
        return cls(listener, port)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._connect, sock=self._listener)
        async with server:
            await server.serve_forever()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await asyncio.open_connection("127.0.0.1", self._port)
        except OSError:  # Streamlit not listening yet, or gone: the client sees a closed socket
            writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until end of stream, then close the other side.

    Closing both directions at the first end of stream is enough for browsers (HTTP keep-alive and
    WebSocket connections end with a close, not a half-close).
    """
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with suppress(OSError):
            writer.close()


def run_server(
    command: Sequence[str], env: Mapping[str, str], relay: LoopbackRelay | None = None
) -> int:
    """Run the server until it exits; its exit status.

    SIGTERM and SIGINT sent to this process are passed on to the server, so a service manager or
    `kill` stops both (Ctrl+C in a terminal reaches both anyway).
    """
    child = subprocess.Popen(list(command), env=dict(env))
    if relay is not None:
        relay.start()

    def forward(signum: int, _frame: object) -> None:
        with suppress(ProcessLookupError):
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:
            child.terminate()
            child.wait()
