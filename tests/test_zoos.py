"""The registry of zoos (train/zoos): every shipped zoo is what its recipe says and installs where
the app finds it; a recipe grows by a backbone or an extra model without touching the command; a
zoo that is not registered yet is made by the same steps as the shipped ones; and the demo command
sends each flag to its zoo."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_attention.app.registry import scan_runs
from cxr_attention.core.errors import ConfigError
from cxr_attention.core.models.checkpoint import read_checkpoint_data
from cxr_attention.train.cli import main
from cxr_attention.train.zoos.demo_folder import install_beside
from cxr_attention.train.zoos.install import FILMS_EVALUATION, PHANTOM_EVALUATION, install_zoo
from cxr_attention.train.zoos.recipe import FilmsRecipe, ZooModel
from cxr_attention.train.zoos.recipes import PHANTOM, PNEUMONIA
from cxr_attention.train.zoos.record import read_zoo
from cxr_attention.train.zoos.registry import PHANTOM_ZOO, ZOOS, Zoo, films_zoo_for
from cxr_attention.train.zoos.training import model_config, zoo_options

TINY = {"epochs": 1, "image_size": 32, "batch_size": 8, "max_train_batches": 1}  # one step
PEAK = {"attention_temperature": 99.0}  # an extra model's own option (the preset: 1)


@pytest.mark.parametrize("zoo", ZOOS, ids=lambda zoo: zoo.name)
def test_every_registered_zoo_is_its_recipe_and_installs_where_the_app_finds_it(zoo, tmp_path):
    record = read_zoo(zoo.folder)
    assert record is not None, f"{zoo.folder}/ZOO.json is missing: `{zoo.command}`"
    assert record["command"] == zoo.command
    # the recipe in the code describes the models shipped, with the options they were trained with
    recorded = type(zoo.recipe).from_json(record["recipe"])
    assert recorded.models() == zoo.recipe.models()
    shipped = list(record["figures"] if zoo.learns_films else record["runs"])
    assert shipped == zoo.recipe.model_names()
    for (
        model
    ) in zoo.recipe.models():  # options fit accepts (a typo is refused here, not in an hour)
        assert model_config(zoo_options(zoo.recipe, "DATA", {}, False), model, tmp_path).backbone

    runs = tmp_path / "runs"
    if zoo.learns_films:
        installed = install_beside(runs, zoo.runs, zoo.folder)
        files = FILMS_EVALUATION
    else:
        installed = install_zoo(runs, shipped, zoo.folder)
        files = ()  # installed with its evaluation only where the films are drawn (tests/test_demo)
        assert all(
            (zoo.folder / name / f).is_file() for name in shipped for f in PHANTOM_EVALUATION
        )
    assert [run.name for run in installed] == shipped
    for run in installed:
        assert run.parent == runs / zoo.runs
        assert all((run / filename).is_file() for filename in files), run
    entries = scan_runs(runs).entries
    assert sorted(entry.name for entry in entries) == sorted(shipped)
    learnt = zoo.recipe.title if zoo.learns_films else "the synthetic phantom"
    assert all(learnt in entry.collection for entry in entries), [e.collection for e in entries]


def test_another_backbone_is_one_name_and_an_extra_model_differs_from_its_cell_alone():
    both = replace(PNEUMONIA, backbones=("mobilenetv2_100", "efficientnet_b0"), extras=())
    models = {model.name: model for model in both.models()}
    assert list(models) == [
        "mobilenetv2_100", "mobilenetv2_100+attention", "mobilenetv2_100+class",
        "efficientnet_b0", "efficientnet_b0+attention", "efficientnet_b0+class",
    ]  # fmt: skip
    class_options = PNEUMONIA.kind_options["class"]
    assert models["efficientnet_b0+class"].options == class_options  # the kind's options
    baseline, cell = models["efficientnet_b0"], PNEUMONIA.variant_options["efficientnet_b0"]
    # the kind's options, then its grid cell's on top (EfficientNet-B0's lung term at weight 2)
    assert baseline.options == PNEUMONIA.kind_options["baseline"] | cell and baseline.kind is None
    assert baseline.options["lung_weight"] == 2.0
    assert models["mobilenetv2_100"].options == PNEUMONIA.kind_options["baseline"]

    own = {"attention_lambda": 0.5}
    teaching = ZooModel("mobilenetv2_100+class~own", "mobilenetv2_100", "class", own, "own")
    bare = replace(PNEUMONIA, extras=())
    with_extra = replace(bare, extras=(teaching,))
    extra = with_extra.models()[-1]
    assert extra.name == "mobilenetv2_100+class~own" and extra.note == "own"
    assert extra.options == class_options | own  # its cell's, then its own
    assert with_extra.models()[:-1] == bare.models()
    # ZOO.json gives the same recipe back
    assert FilmsRecipe.from_json(with_extra.as_json()) == with_extra

    for bad, words in (
        (replace(teaching, name="mobilenetv2_100+class"), "needs a name of its own"),
        (replace(teaching, kind="cbam"), r"has no grid cell mobilenetv2_100\+cbam"),
        (replace(teaching, note=""), "needs a note"),
        # its figures are paired with the others' on the same held-out patients
        (replace(teaching, options={"seed": 1}), "seed would hold out other patients"),
    ):
        with pytest.raises(ConfigError, match=words):
            replace(PNEUMONIA, extras=(bad,))


def test_the_demos_backbones_flag_puts_the_phantom_zoo_on_them_with_its_recipe():
    """The demo's hidden --backbones (tests' tiny zoos): a backbone the recipe does not name gets
    the kinds and the class head's recipe of its first one; its own backbones change nothing."""
    assert PHANTOM.on_backbones(PHANTOM.backbones) == PHANTOM
    tiny = PHANTOM.on_backbones(("test_resnet",))
    assert tiny.model_names() == ["test_resnet", "test_resnet+attention", "test_resnet+class"]
    shipped = {model.name: model.options for model in PHANTOM.models()}
    assert [m.options for m in tiny.models()] == [
        shipped[f"mobilenetv2_100{suffix}"] for suffix in ("", "+attention", "+class")
    ]
    assert list(tiny.variant_options) == ["test_resnet+class"]  # as ZOO.json records it
    assert PHANTOM.on_backbones(("efficientnet_b0",)).models() == PHANTOM.models()[3:]


def test_data_makes_the_films_zoo_its_folder_or_zoo_json_names():
    pneumonia = ZOOS[1]
    assert films_zoo_for(Path("/any/zoo-pneumonia")) is pneumonia
    assert films_zoo_for(Path("/any/mine"), recorded="pneumonia") is pneumonia
    assert films_zoo_for(Path("/any/mine")) is pneumonia  # the only one registered


def test_the_demo_command_sends_each_flag_to_its_zoo_and_refuses_in_one_line(tmp_path, capsys):
    films = tmp_path / "films"
    argv = ["demo", "--no-app", "--dir", str(tmp_path / "demo"), "--no-progress"]
    cases = [
        (["--data", str(films)], "--data makes a real-film zoo: add --retrain"),
        (
            ["--retrain", "--data", str(films), "--zoo", str(PHANTOM_ZOO.folder)],
            "the phantom zoo's folder is not for it",
        ),
        # --data reaches the real-film zoo's recipe, --only is checked before any work
        (
            ["--retrain", "--data", str(films), "--only", "resnet50"],
            "--only resnet50: the zoo has no such model; its models are mobilenetv2_100, "
            "mobilenetv2_100+attention, mobilenetv2_100+class",
        ),
        # and without --data the phantom zoo's
        (["--retrain", "--only", "mobilenetv2_100+cbam"], "efficientnet_b0+class"),
    ]
    for flags, words in cases:
        assert main([*argv, *flags]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "demo" / "training").exists()  # refused before any work


def films_folder(root: Path, n: int = 80, size: int = 64) -> Path:
    """ROOT/NORMAL and ROOT/PNEUMONIA: a chest-like shape, with a bright opacity on pneumonia."""
    rng = np.random.default_rng(0)
    for i in range(n):
        label = "PNEUMONIA" if i % 2 else "NORMAL"
        image = rng.normal(60, 12, (size, size)).clip(0, 255).astype(np.uint8)
        cv2.ellipse(image, (size // 2, size // 2), (size // 3, size * 2 // 5), 0, 0, 360, 150, -1)
        if label == "PNEUMONIA":
            x, y = rng.integers(size // 3, 2 * size // 3, 2)
            cv2.circle(image, (int(x), int(y)), size // 8, 230, -1)
        path = root / label / f"film-{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), image)
    return root


@pytest.mark.slow
def test_a_new_zoo_is_an_entry_and_its_recipe_made_by_the_shipped_zoos_steps(tmp_path):
    from cxr_attention.train.zoos.make import make_films_zoo

    note = "its class maps pooled at their peak"
    recipe = FilmsRecipe(
        collection="tiny",
        title="80 drawn films",
        held_out="a seeded 20 % of the drawn films",
        preset="pneumonia",
        backbones=("test_resnet",),
        default_kinds=("class",),
        kind_options={"class": {"head_stage": -2}},
        extras=(ZooModel("test_resnet+class~peak", "test_resnet", "class", PEAK, note),),
        blanking_limit=4,  # the steps are what is checked: four films blanked, about four probed
        probe_films=20,
    )
    entry = Zoo("tiny", tmp_path / "assets" / "zoo-tiny", recipe, runs="tiny")
    names = ["test_resnet", "test_resnet+class", "test_resnet+class~peak"]
    assert entry.command == "cxr-attention demo --retrain --data DIR --zoo assets/zoo-tiny"
    data = films_folder(tmp_path / "films")
    work = tmp_path / "work"
    make_films_zoo(entry, data, entry.folder, work, True, TINY, (), progress=False)

    record = read_zoo(entry.folder)
    assert record["command"] == entry.command and record["held_out"] == recipe.held_out
    assert list(record["figures"]) == list(record["models"]) == names
    assert record["fit_options"]["epochs"] == 1  # the preset's 8, shrunk
    assert record["models"][names[2]] == {
        "backbone": "test_resnet", "kind": "class", "options": {"head_stage": -2, **PEAK},
        "note": note,
    }  # fmt: skip
    for name in names[1:]:  # each attention model against the baseline, on the same films
        assert record["attention_effect"][name]["against"] == names[0]
    for name in names:
        shipped = entry.folder / name
        assert all((shipped / filename).is_file() for filename in FILMS_EVALUATION), name
        checkpoint = read_checkpoint_data(shipped / "checkpoint.pt")
        assert checkpoint["quantized"]
        assert checkpoint["training"].get("note", "") == (note if name == names[2] else "")
        with np.load(shipped / "timeline" / "images.npz") as timeline:
            assert "views" not in timeline.files  # which films, never the films
        fit = json.loads((shipped / "config.json").read_text())["fit"]
        own = {names[0]: (-1, 1.0), names[2]: (-2, 99.0)}.get(name, (-2, 1.0))
        assert (fit["head_stage"], fit["attention_temperature"]) == own, name
        metrics = json.loads((shipped / "metrics.json").read_text())
        assert (
            metrics["labels"] == ["Pneumonia"]
            and metrics["n_images"] == record["figures"][name]["n_test_images"]
        )

    # installed where the demo puts it, it is a collection of its own for the app
    runs = tmp_path / "runs"
    assert [r.name for r in install_beside(runs, entry.runs, entry.folder)] == names
    assert {e.collection for e in scan_runs(runs).entries} == {recipe.title}
    assert {e.name for e in scan_runs(runs).entries} == set(names)
