"""The lung-field segmenter: it learns, `cxr-attention lungs` writes what it found, bad input gets
one line. The phantom knows its lungs (`lungs/` beside `images/`), so a segmenter can learn them
here in seconds; ../shared/realdata-lungs, when present, checks the real films and the shipped
model on films it did not learn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_attention.core.data.phantom import generate_phantom
from cxr_attention.core.lungs.card import CARD, CHECKPOINT, make_lung_model
from cxr_attention.core.lungs.evaluate import film_scores, summarize
from cxr_attention.core.lungs.fit import LungFitConfig, dice, read_mask
from cxr_attention.core.lungs.model import LungModel, LungModelConfig, load_lung_model
from cxr_attention.core.lungs.pairs import outlined_films, split_outlined
from cxr_attention.core.lungs.segment import segment_lungs
from cxr_attention.core.lungs.shipped import shipped_lung_model
from cxr_attention.train.cli import main

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata-lungs"
ZOO_MODEL = Path(__file__).resolve().parents[1] / "assets" / "zoo" / "mobilenetv2_100"


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("phantom")
    generate_phantom(root, 128, size=96, seed=11, workers=1)
    return root


@pytest.fixture(scope="module")
def shipped() -> LungModel:
    """The shipped lung model (assets/lungs/lungs.pt), read once for the tests that only use it
    (`shipped_lung_model` keeps it for the process: another module's tests may have read it)."""
    return shipped_lung_model()


@pytest.fixture(scope="module")
def learnt(phantom, tmp_path_factory) -> tuple[Path, dict]:
    """A segmenter that learnt the phantom's lung fields (seconds on one core)."""
    out = tmp_path_factory.mktemp("lung-model")
    config = LungFitConfig(
        epochs=4, batch_size=8, lr=3e-3, opacity=0.3, model=LungModelConfig(image_size=64)
    )
    card = make_lung_model(phantom, out, config)
    return out, card


@pytest.mark.slow
def test_the_segmenter_learns_the_phantoms_lung_fields(learnt):
    out, card = learnt
    test = card["test"]["clear"]
    assert test["n"] >= 20
    # measured at each film's own size through the path `cxr-attention lungs` takes
    assert test["mean_dice"] >= 0.85, test
    assert len(test["refused"]) <= test["n"] // 10
    assert (out / CARD).is_file() and (out / CHECKPOINT).is_file()
    # shipped as an 8-bit copy that carries its own card
    model = load_lung_model(out / CHECKPOINT)
    assert model.card["test"]["clear"]["mean_dice"] == test["mean_dice"]


@pytest.mark.slow
def test_lungs_command_writes_masks_at_each_films_own_size(phantom, tmp_path, capsys):
    """The shipped lung model (it learnt phantom films beside the adult ones) through the command."""
    films = split_outlined(outlined_films(phantom))["test"][:4]
    # one film stretched wider than tall (as realdata-lungs' squashed films are): the mask must
    # come back at its own size, on its stretched lungs
    wide = tmp_path / "wide.png"
    image = cv2.imread(str(films[0].film), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(wide), cv2.resize(image, (128, 96), interpolation=cv2.INTER_AREA))
    done = _lungs(
        capsys, *[str(f.film) for f in films], str(wide), "--out", str(tmp_path / "masks")
    )
    assert done.returncode == 0, done.stderr
    for item in films:
        written = cv2.imread(str(tmp_path / "masks" / item.name), cv2.IMREAD_UNCHANGED)
        assert written.dtype == np.uint8 and set(np.unique(written)) <= {0, 255}
        truth = read_mask(item.mask)
        assert written.shape == truth.shape
        assert dice(written > 0, truth) >= 0.8
    mask = cv2.imread(str(tmp_path / "masks" / "wide.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (96, 128)
    stretched = cv2.resize(read_mask(films[0].mask).astype(np.uint8), (128, 96)) > 0
    assert dice(mask > 0, stretched) >= 0.8


@dataclass(frozen=True)
class Done:
    returncode: int
    stderr: str


def _lungs(capsys, *args: str) -> Done:
    """`cxr-attention lungs ARGS` in this process (a subprocess costs seconds of imports;
    tests/test_cli.py runs the console script itself): its status and what it wrote to stderr.
    An exception would fail the test, as a traceback would fail the user."""
    capsys.readouterr()
    status = main(["lungs", *args])
    return Done(status, capsys.readouterr().err)


@pytest.mark.slow
def test_films_without_plausible_lung_fields_are_refused_in_one_line(learnt, tmp_path, capsys):
    out, _ = learnt
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((96, 96), 128, np.uint8))
    cv2.imwrite(str(tmp_path / "noise.png"), rng.integers(0, 256, (96, 96), dtype=np.uint8))
    yy, xx = np.mgrid[:96, :96]
    checker = (((yy // 12 + xx // 12) % 2) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "checkerboard.png"), checker)
    done = _lungs(capsys, str(tmp_path), "--out", str(tmp_path / "masks"), "--lung-model", str(out))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert any("blank.png" in line and "blank" in line for line in lines)
    for name in ("blank", "noise", "checkerboard"):
        assert any(f"skipped {tmp_path / name}.png" in line for line in lines), done.stderr
        assert not (tmp_path / "masks" / f"{name}.png").exists()  # never a mask of nothing


def test_bad_inputs_to_lungs_get_one_line(tmp_path, capsys):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    cases = {
        "missing": (
            _lungs(capsys, str(tmp_path / "nope.png"), "--out", str(tmp_path / "o")),
            "nope.png",
        ),
        "text file": (_lungs(capsys, str(text), "--out", str(tmp_path / "o")), "is a text file"),
        "a classifier as lung model": (
            _lungs(
                capsys,
                str(text),
                "--out",
                str(tmp_path / "o"),
                "--lung-model",
                str(ZOO_MODEL / "checkpoint.pt"),
            ),
            "is not a lung model (it is a classifier checkpoint)",
        ),  # fmt: skip
        "no lung model there": (
            _lungs(capsys, str(text), "--out", str(tmp_path / "o"), "--lung-model", str(tmp_path)),
            "lung model not found",
        ),
    }
    for name, (done, words) in cases.items():
        assert done.returncode != 0, name
        assert words in done.stderr, (name, done.stderr)
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) <= 2, (name, done.stderr)


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realdata-lungs is absent")
def test_the_shipped_lung_model_outlines_adult_films_it_did_not_learn(shipped):
    """The test films of the shipped model's own split (seed 0, 20 % of each centre)."""
    model = shipped
    test = split_outlined(outlined_films(REAL), seed=model.training["fit"]["seed"])["test"]
    summary = summarize(film_scores(test[::3], model))
    for group, figures in summary["per_group"].items():
        assert figures["mean_dice"] >= 0.90, (group, figures)
    assert not summary["refused"]


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realdata-lungs is absent")
def test_the_shipped_lung_model_keeps_opacities_inside_the_field(shipped):
    """Opacities painted into the lung fields (as in training) stay lung: Dice barely moves."""
    model = shipped
    test = split_outlined(outlined_films(REAL), seed=model.training["fit"]["seed"])["test"][::5]
    clear = summarize(film_scores(test, model))["mean_dice"]
    opacified = summarize(film_scores(test, model, opacified=True, seed=5))["mean_dice"]
    assert opacified >= clear - 0.05, (clear, opacified)


@pytest.mark.parametrize("shape", [(80, 80), (60, 140), (150, 70)])
def test_segment_lungs_refuses_a_blank_image(shape, shipped):
    """A blank image, square or oblong (padded, its edge blurred by the resize), is refused
    before any network's answer is trusted."""
    found = segment_lungs(np.full(shape, 0.5, np.float32), shipped)
    assert not found.plausible and "blank" in found.check.reason
