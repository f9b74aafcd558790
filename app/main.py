"""The cxr-attention app: `cxr-attention app [--runs DIR]` or `streamlit run app/main.py -- --runs DIR`."""

from __future__ import annotations

import streamlit as st

from cxr_attention.app import components
from cxr_attention.app import state as S

PAGES = (
    ("views/explore.py", "Explore an image", ":material/radiology:"),
    ("views/compare.py", "Compare models", ":material/compare_arrows:"),
    ("views/failures.py", "Failure cases", ":material/report:"),
    ("views/localization.py", "Localization", ":material/center_focus_strong:"),
    ("views/timeline.py", "Attention over training", ":material/timeline:"),
    ("views/about.py", "About", ":material/info:"),
)


def main() -> None:
    st.set_page_config(page_title="cxr-attention", page_icon="🫁", layout="wide")
    pages = [
        st.Page(path, title=title, icon=icon, default=i == 0)
        for i, (path, title, icon) in enumerate(PAGES)
    ]
    navigation = st.navigation(pages)
    root = components.runs_root()
    everything = components.all_models()
    with st.sidebar:
        components.collection_picker(everything)
        registry = components.registry()
        components.network_notice()
        st.caption(f"Runs folder: `{root}`")
        st.caption(f"{len(registry.entries)} model(s), {len(registry.broken)} unreadable")
        if registry.any_phantom():
            st.caption("⚠️ These models learnt a synthetic phantom, not real films.")
        st.caption(components.NOT_A_DEVICE)
    components.require_runs(registry, root)
    components.collection_banner(registry, everything, explore=navigation.title == PAGES[0][1])
    # Every page's choices, kept across pages and reruns (see app/state.py).
    S.init_defaults(
        st.session_state,
        S.defaults(
            registry.backbones(),
            registry.labels(),
            [e.name for e in registry.side_by_side(registry.evaluated())],
            [e.name for e in registry.side_by_side(registry.localized())],
            {b: registry.attention_kind(b) for b in registry.backbones()},
            registry.class_specific_backbones(),
            real_films=not registry.any_phantom(),
        ),
    )
    navigation.run()


if __name__ == "__main__":  # Streamlit runs the entry script as __main__
    main()
