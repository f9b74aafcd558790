"""The phantom: synthetic chest radiographs with pixel-exact ground truth, in ChestX-ray14's layout.

ChestX-ray14 cannot be downloaded everywhere, so the project draws its own frontal chest films: body,
lungs, heart and mediastinum, diaphragm, ribs, clavicles and spine under varying exposure, position
and view (PA/AP), with the 14 ChestX-ray14 findings at ChestX-ray14-like prevalence and
co-occurrence. Localized findings carry exact masks (and boxes derived from them), so attention
maps can be scored against the truth. Synthetic, not patient data.

`generate_phantom(out, n, size, seed)` writes a set; `plan_dataset` and `render_case` draw single
films in memory (tests, the app's samples).
"""

from cxr_attention.core.data.phantom.anatomy import lung_field_mask
from cxr_attention.core.data.phantom.case import PhantomCase, mask_box, render_case
from cxr_attention.core.data.phantom.casemix import DESIGN_PREVALENCE, PlannedImage, plan_dataset
from cxr_attention.core.data.phantom.lesions import LOCALIZED
from cxr_attention.core.data.phantom.writer import (
    BBOX_HEADER,
    DATA_ENTRY_HEADER,
    GENERATOR_VERSION,
    PhantomSummary,
    generate_phantom,
    mask_name,
)

__all__ = [
    "BBOX_HEADER",
    "DATA_ENTRY_HEADER",
    "DESIGN_PREVALENCE",
    "GENERATOR_VERSION",
    "LOCALIZED",
    "PhantomCase",
    "PhantomSummary",
    "PlannedImage",
    "generate_phantom",
    "lung_field_mask",
    "mask_box",
    "mask_name",
    "plan_dataset",
    "render_case",
]
