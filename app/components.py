"""Small Streamlit pieces shared by the pages: the registry guard and the provenance, device and
network notices."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import streamlit as st

from cxr_attention.app import models
from cxr_attention.app import state as S
from cxr_attention.app.registry import PHANTOM_COLLECTION, ModelEntry, Registry
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


def all_models() -> Registry:
    """Every model in the runs folder, whatever it learnt."""
    return models.registry(runs_root())


def registry() -> Registry:
    """The models that learnt the collection chosen in the sidebar (all when there is one)."""
    return all_models().within(st.session_state.get(S.COLLECTION))


def collection_picker(everything: Registry) -> None:
    """The sidebar's choice of what the shown models learnt, when the runs folder holds several.

    Every page then shows those models alone: a phantom model and a real-film model never share a
    table, a ROC plot or a column. A change of choice forgets the pages' choices (labels, runs),
    which belong to the other models, and keeps an uploaded film.
    """
    collections = everything.collections()
    if len(collections) < 2:
        st.session_state.pop(S.COLLECTION, None)
        return
    if st.session_state.get(S.COLLECTION) not in collections:
        st.session_state[S.COLLECTION] = collections[0]
    st.radio("Models that learnt", collections, key=S.COLLECTION, on_change=S.forget_page_choices)


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


def collection_banner(reg: Registry, everything: Registry, explore: bool = False) -> None:
    """Above every page: what the shown models learnt, when it is not the phantom alone; on the
    Explore page, that the bundled samples are phantom films, which real-film models never saw."""
    collections = reg.collections()
    if len(collections) != 1 or (
        collections[0] == PHANTOM_COLLECTION and len(everything.collections()) == 1
    ):
        return
    st.caption(f"Models that learnt **{collections[0]}** (choose others in the sidebar).")
    if explore and collections[0] != PHANTOM_COLLECTION:
        st.info(
            "The bundled samples are phantom films, unlike anything these models learnt: upload a "
            "chest film of your own (PNG, JPEG or DICOM) to see what they make of a real one. No "
            "real film ships with the app.",
            icon="🩻",
        )


def phantom_notice(entries: Iterable[ModelEntry]) -> None:
    """A plain warning whenever a shown model was trained on the phantom."""
    phantom = [e.name for e in entries if e.is_phantom]
    if phantom:
        st.warning(PHANTOM_NOTICE + f" ({', '.join(phantom)})", icon="⚠️")


def run_label(entry: ModelEntry) -> str:
    """How a run appears in selects: title and folder name."""
    return f"{entry.title} · {entry.name}"
