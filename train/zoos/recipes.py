"""The recipes of the shipped zoos (what `cxr-attention demo --retrain` trains for each).

A recipe must describe the zoo shipped beside it (tests/test_zoos.py checks the models and their
options against ZOO.json), so a change here goes with a retrained zoo.
"""

from __future__ import annotations

from cxr_attention.train.zoos.recipe import FilmsRecipe, PhantomRecipe

# The class-specific head's recipe (benchmarks/attention_recipes.py, "stage2-maxmix-24ep-turn0.05"):
# the head on stage 2 (16 x 16 at 128 px; the network ends there), CSRA pooling with T 99 (the
# maximum over places) and lambda 0.3, so that a label's logit depends on the map's peak, twice the
# preset's epochs, and maps asked to turn with the film (core/training/equivariance.py), so evidence
# sits on the finding: chosen on a validation phantom (docs/attention-study.md, "Where the class
# head reads"). On stage 3 the class head's maps lit a quarter of the film.
CLASS_RECIPE = {
    "head_stage": -3,
    "attention_temperature": 99.0,
    "attention_lambda": 0.3,
    "epochs": 24,
    "map_equivariance": 0.05,
}
# EfficientNet-B0's class head: the same recipe from seed 1 (init, data order, augmentation and the
# training films held out for its validation). From seed 0 its maps pointed into 0.53 of the
# validation phantom's lesions, from seed 1 into 0.68 (docs/attention-study.md, "Maps that turn
# with the film"); MobileNetV2's pointed 0.79 from seed 0.
EFFICIENTNET_CLASS_RECIPE = CLASS_RECIPE | {"seed": 1}

# assets/zoo: MobileNetV2 and EfficientNet-B0, each as a baseline, with the paper's spatial gate and
# with the class-specific head, trained from scratch on a 3,000-film teaching phantom (train/presets/
# demo.yaml) and scored on a phantom drawn with a seed no model trained on.
PHANTOM = PhantomRecipe(
    preset="demo",
    backbones=("mobilenetv2_100", "efficientnet_b0"),
    kinds={
        "mobilenetv2_100": ("spatial", "class"),
        "efficientnet_b0": ("spatial", "class"),
    },
    variant_options={
        "mobilenetv2_100+class": dict(CLASS_RECIPE),
        "efficientnet_b0+class": dict(EFFICIENTNET_CLASS_RECIPE),
    },
)

# assets/zoo-pneumonia: Kermany et al.'s paediatric films (train/presets/pneumonia.yaml), each
# backbone from scratch as a baseline, with the paper's spatial gate and with the class-specific
# head. The class head reads stage 3 (8 x 8 at 128 px), as the phantom zoo's did then. Another
# backbone is one more name in `backbones`; an extra model (same backbone and kind, other options,
# its own folder and note) is one `ZooModel` in `extras`.
PNEUMONIA = FilmsRecipe(
    collection="pneumonia",
    title="5,216 paediatric films from one centre in Guangzhou",
    held_out="a seeded 20 % of the patients (seed 0); the official test films unused",
    preset="pneumonia",
    backbones=("mobilenetv2_100",),
    default_kinds=("spatial", "class"),
    kind_options={"class": {"head_stage": -2}},
)
