"""Published localization figures to print beside ours.

Wang et al., "ChestX-ray8: Hospital-scale chest X-ray database and benchmarks on weakly-supervised
classification and localization of common thorax diseases", CVPR 2017, Table 4: accuracy of the
boxes drawn from thresholded heatmaps at T(IoBB) = 0.1, 0.25, 0.5 on the 984 boxes of ChestX-ray14
(8 findings). Copied from ../shared/REFERENCE.md. They are ChestX-ray14 numbers: phantom scores are
not comparable with them.
"""

from __future__ import annotations

WANG2017_NAME = "Wang et al. 2017 (published)"

# The eight findings that carry boxes in BBox_List_2017.csv, in Wang et al.'s column order.
BOXED_LABELS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
)

# T(IoBB) -> {label: accuracy}
WANG2017_IOBB_ACC: dict[str, dict[str, float]] = {
    "0.1": dict(
        zip(BOXED_LABELS, (0.728, 0.993, 0.712, 0.789, 0.435, 0.165, 0.750, 0.459), strict=True)
    ),
    "0.25": dict(
        zip(BOXED_LABELS, (0.550, 0.979, 0.542, 0.577, 0.282, 0.051, 0.558, 0.347), strict=True)
    ),
    "0.5": dict(
        zip(BOXED_LABELS, (0.283, 0.877, 0.333, 0.423, 0.141, 0.013, 0.383, 0.184), strict=True)
    ),
}
