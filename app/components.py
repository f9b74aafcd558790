"""Small Streamlit pieces shared by the pages: the registry guard and the provenance, device and
network notices."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import streamlit as st

from cxr_attention.app import models
from cxr_attention.app.registry import ModelEntry, Registry
from cxr_attention.app.settings import current_runs_root, reachable_from_network

PHANTOM_NOTICE = (
    "**Trained on synthetic phantom radiographs, not on patients.** These models show how the "
    "method behaves; their numbers say nothing about real chest X-rays."
)
NOT_A_DEVICE = "Research software, not a medical device: never use it for diagnosis."
NETWORK_NOTICE = (
    "**Reachable from the network** ({where}): anyone who can connect to this machine can see "
    "these runs' radiographs and upload files, with no password. See the README, "
    '"Serving the app to others".'
)


def runs_root() -> Path:
    return current_runs_root()


def registry() -> Registry:
    return models.registry(runs_root())


def network_notice() -> None:
    """Say so when the server listens beyond this machine (Streamlit's `server.address`)."""
    address = st.get_option("server.address")
    if reachable_from_network(address):
        where = f"listening on {address}" if address else "listening on every interface"
        st.warning(NETWORK_NOTICE.format(where=where), icon="🌐")


def require_runs(reg: Registry, root: Path) -> None:
    """Say how to get models and stop the page when there are none."""
    if not reg.empty:
        return
    st.info(
        f"No trained models found in `{root}`.\n\n"
        "- For a demo that works offline, run `cxr-attention demo`: it builds the synthetic phantom "
        "set and a small model zoo, evaluates it and opens this app.\n"
        "- On ChestX-ray14, train with `cxr-attention fit --data DATA --backbone resnet101 "
        f"--attention --out {root}/resnet101-att`, then `cxr-attention evaluate` that run.\n\n"
        f"Then start the app with `cxr-attention app --runs {root}`."
    )
    broken_runs(reg)
    st.stop()


def broken_runs(reg: Registry) -> None:
    if reg.broken:
        with st.expander(f"{len(reg.broken)} run(s) could not be read", expanded=reg.empty):
            for item in reg.broken:
                st.markdown(f"- `{item.path}`: {item.reason}")


def phantom_notice(entries: Iterable[ModelEntry]) -> None:
    """A plain warning whenever a shown model was trained on the phantom."""
    phantom = [e.name for e in entries if e.is_phantom]
    if phantom:
        st.warning(PHANTOM_NOTICE + f" ({', '.join(phantom)})", icon="⚠️")


def run_label(entry: ModelEntry) -> str:
    """How a run appears in selects: title and folder name."""
    return f"{entry.title} · {entry.name}"
