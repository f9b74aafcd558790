"""The phantom set: ChestX-ray14's exact layout, deterministic files, masks in the lungs, boxes
equal to the masks, patient-disjoint lists and a ChestX-ray14-like case mix."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_attention.core.data.phantom import (
    BBOX_HEADER,
    DATA_ENTRY_HEADER,
    LOCALIZED,
    generate_phantom,
    lung_field_mask,
    mask_name,
    plan_dataset,
    render_case,
)
from cxr_attention.core.data.phantom.acquisition import make_frame
from cxr_attention.core.data.phantom.casemix import (
    DESIGN_PREVALENCE,
    TEACHING_PREVALENCE,
    base_rates,
    sample_findings,
)
from cxr_attention.core.data.phantom.difficulty import TEACHING
from cxr_attention.core.errors import ConfigError, DatasetError
from cxr_attention.core.labels import ALL14, NO_FINDING, canonical_label
from cxr_attention.train.cli import main

REALDATA = Path(__file__).parents[2] / "shared" / "realdata"
N, SIZE, SEED = 48, 64, 7

# Image-level prevalence in the full ChestX-ray14 (Wang et al. 2017; 112,120 images).
CHESTXRAY14_PREVALENCE = {
    "Infiltration": 0.177,
    "Effusion": 0.119,
    "Atelectasis": 0.103,
    "Nodule": 0.056,
    "Mass": 0.052,
    "Pneumothorax": 0.047,
    "Consolidation": 0.042,
    "Pleural_Thickening": 0.030,
    "Cardiomegaly": 0.025,
    "Emphysema": 0.022,
    "Edema": 0.021,
    "Fibrosis": 0.015,
    "Pneumonia": 0.013,
    "Hernia": 0.002,
}


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("phantom") / "set"
    generate_phantom(root, N, SIZE, SEED, workers=1)
    return root


def read_entries(root: Path) -> list[list[str]]:
    lines = (root / "Data_Entry_2017_v2020.csv").read_text().splitlines()
    return [line.split(",") for line in lines[1:]]


def read_boxes(root: Path) -> list[list[str]]:
    lines = (root / "BBox_List_2017.csv").read_text().splitlines()
    return [line.split(",") for line in lines[1:]]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ---------------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_files_for_any_worker_count(phantom, tmp_path):
    generate_phantom(tmp_path / "two", N, SIZE, SEED, workers=2)
    one, two = tree_bytes(phantom), tree_bytes(tmp_path / "two")
    assert one.keys() == two.keys()
    assert [name for name in one if one[name] != two[name]] == []


def test_one_split_alone_is_that_splits_films_of_the_whole_set(phantom, tmp_path):
    generate_phantom(tmp_path / "test", N, SIZE, SEED, workers=2, splits=("test",))
    whole, alone = tree_bytes(phantom), tree_bytes(tmp_path / "test")
    test = set(whole["test_list.txt"].decode().split("\n"))

    def films(tree: dict[str, bytes]) -> list[str]:  # images/<id>.png, masks/<stem>_<Label>.png
        return sorted(n for n in tree if n.startswith(("images/", "masks/")))

    drawn = films(alone)
    assert drawn == [n for n in films(whole) if Path(n).name[:12] + ".png" in test]
    assert [name for name in drawn if alone[name] != whole[name]] == []  # byte for byte
    assert alone["test_list.txt"] == whole["test_list.txt"] and alone["train_val_list.txt"] == b""
    assert read_entries(tmp_path / "test") == [r for r in read_entries(phantom) if r[0] in test]
    manifest = json.loads(alone["PHANTOM.json"])
    assert (manifest["n"], manifest["splits"]) == (N, ["test"])
    assert manifest["split"] == {"train_val": 0, "test": len(test)} and len(test) < N / 2
    assert json.loads(whole["PHANTOM.json"])["splits"] == ["train_val", "test"]
    with pytest.raises(ConfigError, match="unknown phantom split"):
        generate_phantom(tmp_path / "bad", N, SIZE, SEED, splits=("val",))


def test_another_seed_gives_other_images(phantom, tmp_path):
    generate_phantom(tmp_path / "other", N, SIZE, SEED + 1, workers=1)
    first, other = tree_bytes(phantom), tree_bytes(tmp_path / "other")
    shared = [name for name in first if name.startswith("images/") and name in other]
    assert len(shared) >= 10
    assert sum(first[name] == other[name] for name in shared) == 0
    assert first["Data_Entry_2017_v2020.csv"] != other["Data_Entry_2017_v2020.csv"]


# ---------------------------------------------------------------------------------------- layout
def test_headers_match_the_real_chestxray14_files(phantom):
    entry_header = (phantom / "Data_Entry_2017_v2020.csv").read_text().splitlines()[0]
    box_header = (phantom / "BBox_List_2017.csv").read_text().splitlines()[0]
    assert entry_header == DATA_ENTRY_HEADER and box_header == BBOX_HEADER
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is absent: compared with the built-in headers only")
    with gzip.open(REALDATA / "Data_Entry_2017_v2020.csv.gz", "rt") as f:
        assert f.readline().rstrip("\n") == entry_header
    with gzip.open(REALDATA / "BBox_List_2017.csv.gz", "rt") as f:
        assert f.readline().rstrip("\n") == box_header
    for name in ("train_val_list.txt", "test_list.txt"):  # the real lists end without a newline
        assert not (REALDATA / name).read_bytes().endswith(b"\n")


def test_layout_rows_and_images(phantom):
    rows = read_entries(phantom)
    assert len(rows) == N
    assert all(len(row) == 11 for row in rows)  # the header's 9 names hold 11 cells
    names = [row[0] for row in rows]
    assert names == sorted(names)
    patients = Counter()
    for name, labels, follow_up, patient, age, sex, view, w, h, sx, sy in rows:
        assert re.fullmatch(r"\d{8}_\d{3}\.png", name)
        assert int(name[:8]) == int(patient) and int(name[9:12]) == int(follow_up)
        found = labels.split("|")
        assert found == [NO_FINDING] or set(found) <= set(ALL14)
        assert 0 < int(age) < 100 and sex in {"M", "F"} and view in {"PA", "AP"}
        assert (int(w), int(h)) == (SIZE, SIZE) and float(sx) == float(sy) > 0
        patients[patient] += 1
        image = cv2.imread(str(phantom / "images" / name), cv2.IMREAD_UNCHANGED)
        assert image.dtype == np.uint8 and image.shape == (SIZE, SIZE)  # 8-bit grayscale
    assert max(patients.values()) > 1  # several films per patient
    for name in ("train_val_list.txt", "test_list.txt"):
        assert not (phantom / name).read_bytes().endswith(b"\n")
    assert (phantom / "Data_Entry_2017_v2020.csv").read_bytes().endswith(b"\n")


def test_manifest_says_synthetic_and_counts_the_labels(phantom):
    manifest = json.loads((phantom / "PHANTOM.json").read_text())
    assert manifest["note"] == "synthetic, not patient data"
    assert (manifest["n"], manifest["size"], manifest["seed"]) == (N, SIZE, SEED)
    rows = read_entries(phantom)
    for label in ALL14:
        count = sum(label in row[1].split("|") for row in rows)
        assert manifest["prevalence"][label] == pytest.approx(count / N, abs=1e-6)
    no_finding = sum(r[1] == NO_FINDING for r in rows) / N
    assert manifest["no_finding"] == pytest.approx(no_finding, abs=1e-6)


def test_lists_are_patient_disjoint_and_cover_every_image(phantom):
    train = (phantom / "train_val_list.txt").read_text().split("\n")
    test = (phantom / "test_list.txt").read_text().split("\n")
    assert sorted(train + test) == sorted(row[0] for row in read_entries(phantom))
    assert {n[:8] for n in train}.isdisjoint({n[:8] for n in test})
    assert train and test
    plan = plan_dataset(3000, 0)  # a realistic size for the share of test patients
    patients = {p.patient_id: p.split for p in plan}
    share = sum(s == "test" for s in patients.values()) / len(patients)
    assert 0.17 < share < 0.23


# ------------------------------------------------------------------------------ masks and boxes
def test_masks_match_the_labels_and_are_binary(phantom):
    for row in read_entries(phantom):
        localized = [label for label in row[1].split("|") if label in LOCALIZED]
        files = sorted(p.name for p in (phantom / "masks").glob(f"{row[0][:-4]}_*.png"))
        assert files == sorted(mask_name(row[0], label) for label in localized)
        for name in files:
            mask = cv2.imread(str(phantom / "masks" / name), cv2.IMREAD_UNCHANGED)
            assert mask.shape == (SIZE, SIZE) and mask.dtype == np.uint8
            assert set(np.unique(mask)) == {0, 255}


def test_lung_findings_lie_inside_the_lung_fields(phantom):
    plan = plan_dataset(N, SEED)
    checked = Counter()
    for item in plan:
        case = render_case(item, SIZE, SEED)
        lungs = lung_field_mask(case.anatomy, make_frame(case.acquisition, SIZE))
        for label in case.masks:
            mask = cv2.imread(str(phantom / "masks" / mask_name(item.image_id, label)), 0) > 0
            assert np.array_equal(mask, case.masks[label])  # the file is what was drawn
            if label == "Cardiomegaly":
                assert np.array_equal(mask, case.heart)
            else:
                assert not (mask & ~lungs).any(), f"{item.image_id} {label} leaves the lungs"
            checked[label] += 1
    assert sum(checked.values()) >= 15 and len(checked) >= 5


def test_box_rows_are_the_masks_bounding_boxes(phantom):
    rows = read_boxes(phantom)
    masks = sorted((phantom / "masks").glob("*.png"))
    assert len(rows) == len(masks)
    assert all(len(row) == 6 for row in rows)  # image, label, x, y, w, h as in the real file
    spellings = set()
    for image_id, label, x, y, w, h in rows:
        spellings.add(label)
        mask = cv2.imread(str(phantom / "masks" / mask_name(image_id, canonical_label(label))), 0)
        ys, xs = np.nonzero(mask)
        expected = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        assert tuple(float(v) for v in (x, y, w, h)) == expected
    assert "Infiltration" not in spellings  # the real box file says "Infiltrate"
    assert spellings <= {"Infiltrate"} | set(LOCALIZED)


# ------------------------------------------------------------------------------------ case mix
def test_case_mix_resembles_chestxray14():
    draws = [sample_findings(np.random.default_rng([0, i])) for i in range(20000)]
    counts = Counter(label for found in draws for label in found)
    prevalence = {label: counts[label] / len(draws) for label in ALL14}
    assert 0.46 < sum(not f for f in draws) / len(draws) < 0.54  # about half "No Finding"
    ranked = sorted(ALL14, key=prevalence.get, reverse=True)
    assert ranked[0] == "Infiltration" and ranked[-1] == "Hernia"
    real_rank = sorted(ALL14, key=CHESTXRAY14_PREVALENCE.get, reverse=True)
    # rank correlation with the real ordering
    d = [ranked.index(label) - real_rank.index(label) for label in ALL14]
    spearman = 1 - 6 * sum(x * x for x in d) / (14 * (14 * 14 - 1))
    assert spearman > 0.9
    for label in ALL14:
        assert prevalence[label] == pytest.approx(DESIGN_PREVALENCE[label], abs=0.01)
    # co-occurrence: effusion travels with cardiomegaly and edema
    with_heart = [f for f in draws if "Cardiomegaly" in f]
    p_effusion = prevalence["Effusion"]
    assert sum("Effusion" in f for f in with_heart) / len(with_heart) > 2 * p_effusion


def test_teaching_case_mix_gives_every_finding_enough_examples():
    rates = base_rates(TEACHING.rare_floor)
    draws = [sample_findings(np.random.default_rng([0, i]), rates) for i in range(20000)]
    counts = Counter(label for found in draws for label in found)
    for label in ALL14:
        prevalence = counts[label] / len(draws)
        assert prevalence == pytest.approx(TEACHING_PREVALENCE[label], abs=0.01)
        assert prevalence > 0.03  # Hernia too: about 36 films in a thousand
    assert 0.46 < sum(not f for f in draws) / len(draws) < 0.54


def test_written_labels_are_the_images_own_draws(phantom):
    rates = base_rates(TEACHING.rare_floor)  # generate_phantom's default difficulty
    for index, row in enumerate(read_entries(phantom)):
        found = sample_findings(np.random.default_rng([SEED, index]), rates)
        assert row[1] == ("|".join(found) or NO_FINDING)


def mass_contrast(difficulty: str) -> float:
    """Median grey-level step from a ring of lung into six masses, at 128 px."""
    differences = []
    for item in plan_dataset(400, 1):
        case = render_case(item, 128, 1, difficulty=difficulty)
        if "Mass" not in case.masks:
            continue
        mask = case.masks["Mass"]
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        ring &= ~mask & case.lung_field
        if ring.sum() >= 10:
            differences.append(case.image[mask].mean() - case.image[ring].mean())
        if len(differences) == 6:
            break
    assert len(differences) == 6
    return float(np.median(differences))


def test_masses_are_brighter_than_the_lung_around_them():
    research = mass_contrast("research")
    assert 5 < research < 80  # grey levels: visible, yet far from saturated
    assert mass_contrast("teaching") > 1.5 * research  # the teaching default: plainer


def test_a_lesion_free_twin_differs_from_its_film_only_near_the_lesion():
    item = next(p for p in plan_dataset(400, 1) if "Mass" in render_case(p, 128, 1).masks)
    film, twin = render_case(item, 128, 1), render_case(item, 128, 1, lesions=False)
    assert film.findings == twin.findings and film.view == twin.view
    assert np.array_equal(film.masks["Mass"], twin.masks["Mass"])
    near = cv2.dilate(film.masks["Mass"].astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    change = np.abs(film.image.astype(int) - twin.image.astype(int))
    assert change[near].mean() > 5 * change[~near].mean()  # same noise, same anatomy elsewhere


# --------------------------------------------------------------------------- errors and the CLI
def test_refuses_bad_arguments_and_foreign_folders(tmp_path):
    with pytest.raises(ConfigError, match="--size"):
        generate_phantom(tmp_path / "a", 4, 16, 0)
    with pytest.raises(ConfigError, match="--n"):
        generate_phantom(tmp_path / "a", 0, 64, 0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        generate_phantom(tmp_path / "busy", 4, 64, 0, workers=1)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_unguarded_script_with_workers_gets_a_clear_message(tmp_path):
    # Worker processes re-import a script's top level; without a __main__ guard they die.
    script = tmp_path / "make.py"
    script.write_text(
        "from cxr_attention.core.data.phantom import generate_phantom\n"
        f"generate_phantom({str(tmp_path / 'set')!r}, 24, 32, 0, workers=2)\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    assert "__name__ == '__main__'" in result.stderr and "workers=1" in result.stderr


def test_cli_in_process_and_overwrite(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["phantom", str(out), "--n", "5", "--size", "48", "--workers", "1", "--quiet"]) == 0
    assert "wrote 5 synthetic images" in capsys.readouterr().out
    assert main(["phantom", str(out), "--n", "5", "--size", "48", "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    args = ["phantom", str(out), "--n", "3", "--size", "48", "--workers", "1", "--overwrite"]
    assert main([*args, "--quiet"]) == 0
    assert len(list((out / "images").iterdir())) == 3
    assert main(["phantom", str(tmp_path / "b"), "--n", "6", "--size", "8"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "--size" in err


def test_cli_through_a_subprocess(tmp_path):
    out = tmp_path / "set"
    result = subprocess.run(
        [sys.executable, "-m", "cxr_attention.train.cli", "phantom", str(out)]
        + ["--n", "6", "--size", "40", "--seed", "2", "--workers", "1", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 6 synthetic images" in result.stdout
    assert len(list((out / "images").glob("*.png"))) == 6
    assert (out / "PHANTOM.json").is_file()
