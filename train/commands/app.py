"""`cxr-attention app [--runs DIR] [--port P] [--host ADDRESS] [--headless]`: start the Streamlit app.

The app's entry script is found through the installed `app` package, so the command works from any
folder; the settings that `.streamlit/config.toml` holds for `streamlit run` are passed as flags,
which win over any config file or STREAMLIT_* variable.

By default the app listens on this machine only (127.0.0.1, and ::1 through `train.serve`):
clinicians run it on laptops in hospital networks, and its pages show patients' radiographs.
`--host` opts in to another address, with a warning when that address is not a loopback one.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from pathlib import Path

from cxr_attention.core.errors import ConfigError, RunError

DEFAULT_PORT = 8501


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "app", help="start the Streamlit app (upload radiographs, switch attention, compare)"
    )
    parser.add_argument(
        "--runs", default="runs", metavar="DIR", help="folder of run folders (default: ./runs)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default: 8501)")
    add_host_flag(parser)
    parser.add_argument(
        "--headless", action="store_true", help="do not open a browser (servers, CI)"
    )
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="DIR",
        help="a dataset folder where runs whose recorded data folder is not on this machine find "
        "their films (failure cases, galleries); repeat for several",
    )
    parser.set_defaults(func=run)


def add_host_flag(parser: argparse.ArgumentParser) -> None:
    """`--host ADDRESS`, shared with `cxr-attention demo`."""
    parser.add_argument(
        "--host",
        metavar="ADDRESS",
        help=(
            "listen on ADDRESS instead of this machine only (default: 127.0.0.1 and ::1); "
            "0.0.0.0 or :: lets anyone on the network open the app, with no password: "
            "see the README on serving to others"
        ),
    )


def main_script() -> Path:
    """The app's entry script, located through the `app` package."""
    from cxr_attention import app

    return Path(app.__file__).resolve().parent / "main.py"


def streamlit_command(
    runs: Path,
    port: int,
    headless: bool,
    *,
    host: str | None = None,
    debug: bool = False,
) -> list[str]:
    """The `streamlit run` command line that serves `runs` on `host` (default 127.0.0.1):`port`.

    No e-mail prompt on a first run (it would wait forever with no terminal); without `headless`,
    Streamlit opens a browser where there is a display.
    """
    from cxr_attention.app.settings import LOOPBACK_HOST, MAX_UPLOAD_MB

    flags = {
        "server.address": host or LOOPBACK_HOST,
        "server.port": str(port),
        "server.showEmailPrompt": "false",
        "server.maxUploadSize": str(MAX_UPLOAD_MB),
        "server.enableXsrfProtection": "true",
        "server.enableCORS": "true",
        "server.fileWatcherType": "none",
        "client.showErrorDetails": "none",
        "client.toolbarMode": "minimal",
        "browser.gatherUsageStats": "false",
        "runner.magicEnabled": "false",
    }
    if headless:
        flags["server.headless"] = "true"
    if debug:
        flags["logger.level"] = "debug"
    command = [sys.executable, "-m", "streamlit", "run", str(main_script())]
    for name, value in flags.items():
        command += [f"--{name}", value]
    return command + ["--", "--runs", str(runs)]


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """Refuse a port outside 1-65535, one already in use, or a host this machine cannot listen on."""
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port} is not a TCP port: choose one from 1024 to 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError):
        raise ConfigError(f"--host {host} is not an address or a name this machine knows") from None
    with socket.socket(family, kind, proto) as probe:
        if os.name != "nt":  # as Streamlit binds: a stopped app's closing connections don't count
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} is already in use (another app running?): pass --port {port + 1}"
                ) from None
            raise ConfigError(
                f"cannot listen on {host} ({exc.strerror}): pass an address of this machine, "
                "or leave --host out to listen on this machine only"
            ) from None


def launch_app(
    runs: str | Path,
    port: int = DEFAULT_PORT,
    headless: bool = False,
    *,
    host: str | None = None,
    debug: bool = False,
    data: list[str] | tuple[str, ...] = (),
) -> int:
    """Serve the app for the run folders under `runs` until interrupted; the exit status.

    `host` None (or "localhost") listens on this machine only: 127.0.0.1, and ::1 where there is
    IPv6. Any other address is passed to Streamlit as it is.
    """
    from cxr_attention.app.settings import DATA_ENV, RUNS_ENV, is_loopback
    from cxr_attention.train.serve import LoopbackRelay, run_server

    root = Path(runs).expanduser().resolve()
    if not root.is_dir():
        raise RunError(
            f"runs folder {root} does not exist: run `cxr-attention demo`, or pass --runs DIR "
            "pointing at the folder your `fit --out` runs are in"
        )
    if host is not None and not host.strip():
        raise ConfigError("--host is empty: pass an address, or leave it out")
    default = host is None or host.lower() == "localhost"
    listen = None if default else host
    check_port(port, listen or "127.0.0.1")
    relay = LoopbackRelay.bind(port) if default else None
    folders = [Path(d).expanduser().resolve() for d in data]
    for folder in folders:
        if not folder.exists():
            raise ConfigError(f"--data {folder} does not exist: give the dataset folder")
    env = {**os.environ, RUNS_ENV: str(root), "HF_HUB_OFFLINE": "1"}
    if folders:
        env[DATA_ENV] = os.pathsep.join(map(str, folders))
    if default:
        where = "this machine only: 127.0.0.1" + (" and [::1]" if relay else "")
        print(f"cxr-attention app: serving {root} at http://localhost:{port} ({where})",
              file=sys.stderr)  # fmt: skip
    else:
        print(f"cxr-attention app: serving {root} on {host} port {port}", file=sys.stderr)
        if not is_loopback(host):
            print(
                f"cxr-attention app: warning: listening on {host}: anyone who can reach this "
                "machine can see the runs' radiographs and upload files, with no password "
                "(README: Serving the app to others)",
                file=sys.stderr,
            )
    return run_server(streamlit_command(root, port, headless, host=listen, debug=debug), env, relay)


def run(args: argparse.Namespace) -> int:
    return launch_app(
        args.runs, args.port, args.headless, host=args.host, debug=getattr(args, "debug", False),
        data=args.data,
    )  # fmt: skip
