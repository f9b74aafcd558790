"""Where the app finds its runs and samples, and the limits it states to users.

The runs folder comes from, in order: a ``--runs DIR`` argument after ``--`` on the
``streamlit run app/main.py -- --runs DIR`` line, the ``CXR_ATTENTION_RUNS`` environment variable
(which `cxr-attention app --runs DIR` sets), or ``./runs``.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

RUNS_ENV = "CXR_ATTENTION_RUNS"
DATA_ENV = "CXR_ATTENTION_DATA"  # dataset folders for runs whose recorded one is elsewhere
DEFAULT_RUNS = Path("runs")

# Uploads larger than this are refused by Streamlit before they reach the app; the same number is
# set as `server.maxUploadSize` in .streamlit/config.toml and by `cxr-attention app`.
MAX_UPLOAD_MB = 64
UPLOAD_TYPES = ("png", "jpg", "jpeg", "dcm", "dicom")

# Where the app listens unless told otherwise (`cxr-attention app --host`, `server.address`):
# this machine only. `cxr-attention app` also listens on ::1 where there is IPv6.
LOOPBACK_HOST = "127.0.0.1"

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES_ENV = "CXR_ATTENTION_SAMPLES"  # another samples folder (tests, teaching sets)
SAMPLES_DIR = REPO_ROOT / "assets" / "samples"


def runs_root(argv: Sequence[str], environ: Mapping[str, str]) -> Path:
    """The runs folder named by `--runs DIR` in `argv`, else by the environment, else ``./runs``."""
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--runs" and i + 1 < len(args):
            return Path(args[i + 1]).expanduser()
        if arg.startswith("--runs="):
            return Path(arg.split("=", 1)[1]).expanduser()
    if environ.get(RUNS_ENV):
        return Path(environ[RUNS_ENV]).expanduser()
    return DEFAULT_RUNS


def current_runs_root() -> Path:
    """`runs_root` for this process (the script's own arguments and environment)."""
    import sys

    return runs_root(sys.argv[1:], os.environ)


def data_folders(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Dataset folders given to `cxr-attention app --data DIR` (the CXR_ATTENTION_DATA variable):
    where a run whose recorded data folder is not on this machine looks for its films."""
    environ = os.environ if environ is None else environ
    return [Path(p).expanduser() for p in environ.get(DATA_ENV, "").split(os.pathsep) if p]


def samples_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Folder of bundled samples (`assets/samples/`, or `CXR_ATTENTION_SAMPLES`)."""
    environ = os.environ if environ is None else environ
    return Path(environ[SAMPLES_ENV]) if environ.get(SAMPLES_ENV) else SAMPLES_DIR


@functools.cache
def is_loopback(host: str) -> bool:
    """True when `host` (an IP address or a name) reaches this machine only: 127.0.0.0/8, ::1.

    A name counts as loopback when every address it resolves to is; one that does not resolve does
    not count (the server could not listen on it anyway).
    """
    if host.lower() == "localhost":  # always loopback (RFC 6761), whatever the resolver says
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    addresses = {info[4][0].split("%")[0] for info in found}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def reachable_from_network(address: str | None) -> bool:
    """Whether a Streamlit `server.address` lets other machines connect (unset: every interface)."""
    return not address or not is_loopback(address)
