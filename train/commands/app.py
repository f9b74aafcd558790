"""`cxr-attention app [--runs DIR] [--port P] [--headless]`: start the Streamlit app.

The app's entry script is found through the installed `app` package, so the command works from any
folder; the settings that `.streamlit/config.toml` holds for `streamlit run` are passed as flags.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

from core.errors import ConfigError, RunError

DEFAULT_PORT = 8501


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "app", help="start the Streamlit app (upload radiographs, switch attention, compare)"
    )
    parser.add_argument(
        "--runs", default="runs", metavar="DIR", help="folder of run folders (default: ./runs)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default: 8501)")
    parser.add_argument(
        "--headless", action="store_true", help="do not open a browser (servers, CI)"
    )
    parser.set_defaults(func=run)


def main_script() -> Path:
    """The app's entry script, located through the `app` package."""
    import app

    return Path(app.__file__).resolve().parent / "main.py"


def streamlit_command(runs: Path, port: int, headless: bool) -> list[str]:
    """The `streamlit run` command line that serves `runs` on `port`."""
    from app.settings import MAX_UPLOAD_MB

    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(main_script()),
        "--server.port",
        str(port),
        "--server.headless",
        "true" if headless else "false",
        "--server.maxUploadSize",
        str(MAX_UPLOAD_MB),
        "--server.fileWatcherType",
        "none",
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "minimal",
        "--browser.gatherUsageStats",
        "false",
        "--runner.magicEnabled",
        "false",
        "--",
        "--runs",
        str(runs),
    ]


def check_port(port: int) -> None:
    """Refuse a port outside 1-65535 or one another program already listens on."""
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port} is not a TCP port: choose one from 1024 to 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise ConfigError(
                f"port {port} is already in use (another app running?): pass --port {port + 1}"
            ) from None


def launch_app(runs: str | Path, port: int = DEFAULT_PORT, headless: bool = False) -> int:
    """Serve the app for the run folders under `runs` until interrupted; the exit status."""
    from app.settings import RUNS_ENV

    root = Path(runs).expanduser().resolve()
    if not root.is_dir():
        raise RunError(
            f"runs folder {root} does not exist: run `cxr-attention demo`, or pass --runs DIR "
            "pointing at the folder your `fit --out` runs are in"
        )
    check_port(port)
    env = {**os.environ, RUNS_ENV: str(root), "HF_HUB_OFFLINE": "1"}
    print(f"cxr-attention app: serving {root} on http://localhost:{port}", file=sys.stderr)
    return subprocess.run(streamlit_command(root, port, headless), env=env).returncode


def run(args: argparse.Namespace) -> int:
    return launch_app(args.runs, args.port, args.headless)
