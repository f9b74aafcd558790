"""About: a model card per run, the limitations, and how to train on real data."""

import json

import streamlit as st

from cxr_attention.app import components, models
from cxr_attention.app.registry import ModelEntry
from cxr_attention.core.errors import CxrError
from cxr_attention.core.ood_probes import TRUST
from cxr_attention.core.runs import METRICS

st.title("About")
st.markdown(
    "This app shows attention-infused CNNs for multi-label chest-radiograph classification, "
    "trained with sigmoid outputs and binary cross-entropy on the ChestX-ray14 findings. Three "
    "attention kinds: the paper's **spatial gate** (CBAM's spatial attention after the backbone's "
    "last stage(s): one map for every label), **CBAM** (channel attention, then that gate) and "
    "**class-specific attention** (CSRA, Zhu and Wu 2021: one map per label, each place's "
    "probability of the label on its own). "
    f"**{components.NOT_A_DEVICE}**"
)
registry = components.registry()
components.phantom_notice(registry.entries)


def card(entry: ModelEntry) -> None:
    """The model card of one run."""
    config = entry.config
    rows = {
        "run folder": str(entry.run.path),
        "backbone": config.backbone,
        "attention": entry.attention_summary,
        "input": f"{config.image_size} px, {config.in_chans} channel(s)",
        "final feature map": entry.final_map,
        "lung prior": f"{entry.lung_prior}: it {entry.prior_words}"
        if entry.prior_words
        else "none (it reads the whole film)",
        "labels": f"{len(config.labels)}: {', '.join(config.labels)}",
        "learnt": entry.collection,
        "data folder": entry.data_root or "not recorded",
        "split": entry.split or "not recorded",
        "epochs": str(entry.epochs) if entry.epochs is not None else "?",
        "best validation macro AUC": f"{entry.val_auc:.3f}" if entry.val_auc is not None else "?",
        "pretrained weights": str(entry.pretrained or "none (trained from scratch)"),
        "created": entry.created,
    }
    if entry.has(METRICS):
        try:
            metrics = models.run_file(entry, METRICS)
            micro, macro = metrics.get("micro_auc"), metrics.get("macro_auc")
            rows["test micro / macro AUC"] = (
                f"{micro:.3f} / {macro:.3f} on {metrics.get('n_images', '?')} images "
                f"({metrics.get('split', '?')} split)"
                if isinstance(micro, float) and isinstance(macro, float)
                else "undefined"
            )
        except CxrError as exc:
            rows["test metrics"] = str(exc)
    rows |= trust_rows(entry)
    st.table({"": list(rows), "value": list(rows.values())})
    if entry.is_phantom:
        st.warning(components.PHANTOM_NOTICE, icon="⚠️")


def trust_rows(entry: ModelEntry) -> dict[str, str]:
    """What the model's out-of-distribution warning flags (RUN/trust.json, shipped with a zoo)."""
    path = entry.run.path / TRUST
    if not path.is_file():
        return {}
    try:
        shares = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {
        f"flagged as unlike its training films: {name}": f"{s['flagged']} of {s['n']}"
        for name, s in shares.items()
    }


st.header("Model cards")
for entry in registry.entries:
    with st.expander(components.run_label(entry), expanded=len(registry.entries) == 1):
        card(entry)
components.broken_runs(registry)

st.header("Limitations")
st.markdown(
    "- **Labels are noisy.** ChestX-ray14's labels were mined from radiology reports by NLP; some "
    "are wrong, so AUCs measure agreement with the text mining, not with ground truth.\n"
    "- **Not a medical device.** No clinical validation; never use for diagnosis or triage.\n"
    "- **Maps are not segmentations.** Attention maps and Grad-CAM show where the model's evidence "
    "sits at a coarse grid (7 x 7 at 224 px, 8 x 8 at 128 px with output stride 16); they can look "
    "plausible and still be wrong.\n"
    "- **A gate is not a finding's map.** The spatial gate is one map for every label, learnt "
    "without any location label: it weights anatomy and rarely singles out a lesion "
    "(docs/attention-diagnosis.md). The class-specific map is the one made per finding.\n"
    "- **Phantom models** are trained on synthetic images: they demonstrate the method only.\n"
    "- **Dataset shift.** A model knows only what it learnt (the sidebar names it): the "
    "paediatric models learnt 5,216 films of children aged one to five from one centre in "
    "Guangzhou, resized to 224 px; adult films, other views, other hospitals or heavily "
    "processed images lie outside it (README: Trust across the two zoos).\n"
    "- **Films without outlines.** The paediatric films say which films show pneumonia, not "
    "where: no pointing, IoBB or energy is measured for those models, only blanking."
)

st.header("Train on real data")
st.code(
    "# ChestX-ray14 from the NIH (images/ or images_001/images/ ..., Data_Entry_2017.csv, lists)\n"
    "cxr-attention cache DATA --size 224\n"
    "cxr-attention fit --data DATA --backbone resnet101 --attention --image-size 224 \\\n"
    "    --epochs 20 --batch-size 32 --labels paper13 --out runs/resnet101-att\n"
    "cxr-attention evaluate runs/resnet101-att\n"
    "cxr-attention localize runs/resnet101-att --method attention\n"
    "cxr-attention app --runs runs\n"
    "# or the whole paper grid: cxr-attention sweep --data DATA --preset paper --out runs",
    language="bash",
)
