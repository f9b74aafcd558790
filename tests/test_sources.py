"""Collections beyond ChestX-ray14, through one contract: class folders and tables, read on small
generated trees for each layout and each quirk (core.data.sources, core.data.audit)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from cxr_attention.core.data.audit import audit_films, check_films
from cxr_attention.core.data.index import DatasetWarning
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.data.sources import open_dataset
from cxr_attention.core.errors import ConfigError
from cxr_attention.train.cli import main


def film(path: Path, seed: int, size: int = 40, rgb: bool = False, colour: bool = False) -> Path:
    """A small distinct film (no two seeds give the same bytes) as PNG or JPEG by its suffix."""
    rng = np.random.default_rng(seed)
    gray = rng.integers(0, 256, (size, size), dtype=np.uint8)
    image = cv2.merge([gray, gray, gray]) if rgb or colour else gray
    if colour:
        image[..., 0] = 255 - gray
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())


def kaggle_tree(root: Path) -> Path:
    """Kermany's layout as Kaggle's zip unpacks it: a nested copy, macOS debris, a README."""
    base = root / "chest_xray" / "chest_xray"
    seed = iter(range(10_000))
    for split, patients in (("train", range(1, 21)), ("val", (21, 22)), ("test", (30, 31, 3))):
        for p in patients:
            film(base / split / "PNEUMONIA" / f"person{p}_bacteria_{next(seed)}.jpeg", next(seed))
            film(base / split / "NORMAL" / f"IM-{p:04d}-0001.jpeg", next(seed))
        film(base / split / "NORMAL" / f"NORMAL2-IM-{patients[0]:04d}-0001.jpeg", next(seed))
    train = base / "train"
    film(train / "PNEUMONIA" / "person1_virus_900.jpeg", next(seed))  # a second film of person1
    # byte-identical: two names in one class; a film in train and in test
    copy(train / "NORMAL" / "IM-0005-0001.jpeg", train / "NORMAL" / "IM-0005-0001-0002.jpeg")
    copy(base / "test" / "NORMAL" / "IM-0030-0001.jpeg", train / "NORMAL" / "IM-0030-0002.jpeg")
    (train / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (train / "NORMAL" / "._IM-0001-0001.jpeg").write_bytes(b"\x00\x05\x16\x07")
    film(root / "chest_xray" / "__MACOSX" / "chest_xray" / "x.jpeg", 99_999)
    (root / "README.md").write_text("Chest X-Ray Images (Pneumonia)\n")
    return base


def kinds(index) -> dict[str, object]:
    return {finding.kind: finding for finding in index.findings}


def test_kaggle_layout_classes_patients_splits_and_quirks(tmp_path):
    base = kaggle_tree(tmp_path)
    index = open_dataset(tmp_path, val_fraction=0.2)
    assert index.source == "class_folders" and index.root == base
    assert index.labels == ("Pneumonia",) and index.split_method == "given"
    items = index.items.set_index("image_id")
    assert items.loc["train/PNEUMONIA/person2_bacteria_3.jpeg", "Pneumonia"] == 1
    assert items.loc["train/NORMAL/IM-0002-0001.jpeg", "Pneumonia"] == 0
    # test is test/; val/ joined training, from which validation is carved by patient
    assert set(items[items["split"] == "test"].index) == {
        p.relative_to(base).as_posix() for p in (base / "test").rglob("*.jpeg")
    }
    assert set(items.loc[items.index.str.startswith("val/"), "split"]) <= {"train", "val"}
    assert (items["split"] == "val").sum() > 0
    by_patient = index.items.groupby("patient_id")["split"].nunique()
    assert (by_patient == 1).all()  # no patient in two splits
    # person3 and IM-0003 have films in train/ and test/: their training films are left out
    assert not any(
        i.startswith("train/") and ("person3_" in i or "IM-0003" in i) for i in items.index
    )
    assert "test/PNEUMONIA/person3_bacteria" in " ".join(items.index)
    # person1's two films are one patient; IM-0001 and NORMAL2-IM-0001 are two
    person1 = items[items.index.str.contains("person1_")]["patient_id"]
    assert len(person1) == 2 and person1.nunique() == 1
    im = items.loc[["train/NORMAL/IM-0001-0001.jpeg", "train/NORMAL/NORMAL2-IM-0001-0001.jpeg"]]
    assert im["patient_id"].nunique() == 2
    found = kinds(index)
    assert found["identical_files"].count == 2
    assert found["identical_files_in_two_splits"].count == 1
    twins = {"train/NORMAL/IM-0005-0001.jpeg", "train/NORMAL/IM-0005-0001-0002.jpeg"}
    assert len(twins & set(items.index)) == 1  # one copy kept
    assert "train/NORMAL/IM-0030-0002.jpeg" not in items.index  # the test copy kept
    assert found["patients_in_two_splits"].count == 2
    assert found["patients_in_two_splits"].examples == ("IM-3", "person3")
    assert found["debris"].count == 2  # .DS_Store and ._ (the outer __MACOSX is not descended)
    assert found["layout"].message == "class folders found under chest_xray/chest_xray/"
    assert "val/ joins train/" in found["splits"].action


def test_flat_class_folders_three_classes_and_a_recorded_seeded_split(tmp_path):
    root = tmp_path / "covid"
    for k, name in enumerate(("COVID", "Normal", "Viral Pneumonia")):
        for i in range(20):
            film(root / name / f"{name}-{i}.png", 100 * k + i)
    index = open_dataset(root, seed=3)
    assert index.labels == ("COVID", "Viral Pneumonia") and index.split_method == "patient"
    assert index.items[list(index.labels)].sum(axis=1).max() == 1  # one class per film
    assert (
        (index.items[index.items["image_id"].str.startswith("Normal/")][["COVID"]] == 0).all().all()
    )
    assert set(index.items["split"]) == {"train", "val", "test"}
    assert 8 <= (index.items["split"] == "test").sum() <= 16  # 20 % of 60 films, by patient
    again, other = open_dataset(root, seed=3), open_dataset(root, seed=4)
    assert again.items["split"].tolist() == index.items["split"].tolist()
    assert other.items["split"].tolist() != index.items["split"].tolist()
    assert "no patient can be read" in kinds(index)["patients"].message
    assert open_dataset(root, labels="viral pneumonia").labels == ("Viral Pneumonia",)
    with pytest.raises(ConfigError, match="ChestX-ray14's findings.*COVID, Viral Pneumonia"):
        open_dataset(root, labels="all14")


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"PNEUMONIA": 3}, "has one class (PNEUMONIA)"),
        ({"train/PNEUMONIA": 3}, "has one class (PNEUMONIA)"),
        ({"NORMAL": 2, "PNEUMONIA": 0}, "PNEUMONIA/ holds no films"),
        ({"NORMAL": 2, "No Finding": 2}, "means no finding (NORMAL, No Finding)"),
    ],
)
def test_class_folders_that_cannot_train_end_in_one_line(tmp_path, capsys, layout, message):
    root = tmp_path / "data"
    for k, (folder, n) in enumerate(layout.items()):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            film(root / folder / f"f{i}.png", 10 * k + i)
    assert main(["data", str(root)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("cxr-attention data: error:")
    assert message in line, line


def test_unreadable_films_are_named_and_left_out(tmp_path):
    root = tmp_path / "data"
    for i in range(6):
        film(root / "NORMAL" / f"n{i}.jpeg", i)
        film(root / "PNEUMONIA" / f"p{i}.jpeg", 100 + i)
    (root / "NORMAL" / "saved-page.jpeg").write_text("<html>not found</html>")
    (root / "NORMAL" / "empty.png").write_bytes(b"")
    good = (root / "PNEUMONIA" / "p0.jpeg").read_bytes()
    (root / "PNEUMONIA" / "cut.jpeg").write_bytes(good[: len(good) // 2])  # no end marker
    index = open_dataset(root)
    unreadable = kinds(index)["unreadable"]
    assert unreadable.count == 2 and set(unreadable.examples) == {
        "NORMAL/saved-page.jpeg",
        "NORMAL/empty.png",
    }
    assert "empty file (0 bytes)" in unreadable.message
    assert "PNEUMONIA/cut.jpeg" in set(index.items["image_id"])  # its first bytes look fine
    checked = check_films(index)
    assert "PNEUMONIA/cut.jpeg" not in set(checked.items["image_id"])
    undecodable = kinds(checked)["undecodable"]
    assert undecodable.examples == ("PNEUMONIA/cut.jpeg",) and "truncated" in undecodable.message


def test_decoding_names_exif_orientation_rgb_of_a_grey_film_and_colour(tmp_path):
    from PIL import Image

    root = tmp_path / "data"
    for i in range(4):
        film(root / "NORMAL" / f"n{i}.png", i)
    film(root / "PNEUMONIA" / "rgb.jpeg", 10, rgb=True)
    film(root / "PNEUMONIA" / "colour.png", 11, colour=True)
    tall = np.zeros((60, 40), dtype=np.uint8)
    tall[:10] = 255  # bright at the top as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    Image.fromarray(tall).save(root / "PNEUMONIA" / "turned.jpeg", exif=exif, quality=95)
    index = open_dataset(root)
    found = {f.kind: f for f in audit_films(index).findings()}
    assert found["exif_orientation"].examples == ("PNEUMONIA/turned.jpeg",)
    assert found["rgb_grey"].examples == ("PNEUMONIA/rgb.jpeg",)
    assert found["colour"].examples == ("PNEUMONIA/colour.png",)
    assert found["decoded"].count == 7
    # applied as viewers apply it: the 60 x 40 film is shown 40 rows x 60 columns, the bright
    # band on the right
    turned = load_radiograph(root / "PNEUMONIA" / "turned.jpeg").pixels
    assert turned.shape == (40, 60) and turned[:, -10:].mean() > 0.9 > 0.1 > turned[:, :30].mean()


def test_a_dicom_in_a_class_folder_is_a_film(tmp_path):
    from tests.test_dicom import chest, make_dataset, save

    root = tmp_path / "data"
    for i in range(3):
        film(root / "NORMAL" / f"n{i}.png", i)
        film(root / "EFFUSION" / f"e{i}.png", 10 + i)
    save(
        make_dataset(chest(size=48)[0]), root / "EFFUSION" / "IMG0001"
    )  # no suffix, as PACS exports
    index = open_dataset(root)
    assert index.labels == ("Effusion",)
    assert "EFFUSION/IMG0001" in set(index.items["image_id"])
    assert kinds(check_films(index))["decoded"].count == 7


def write_table(folder: Path, rows: list[dict], name: str = "labels.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / name, index=False)
    return folder / name


def table_rows(folder: Path, n: int = 24) -> list[dict]:
    rows = []
    for i in range(n):
        film(folder / "films" / f"f{i:02d}.png", i)
        rows.append(
            {
                "Path": f"films/f{i:02d}.png",
                "Effusion": ["1", "0", "", "-1"][i % 4],
                "Pleural Thickening": "1" if i % 3 == 0 else "0",
                "No Finding": "1" if i % 4 == 1 else "",
                "Frontal/Lateral": "Frontal",
                "patient": f"P{i // 2}",
                "Sex": ["Male", "Female"][i % 2],
                "Age": str(30 + i),
                "AP/PA": ["PA", "AP", "LL"][i % 3] if i else "",
                "split": "test" if i >= 20 else ("val" if i >= 18 else "train"),
            }
        )
    return rows


def test_a_table_of_paths_labels_and_metadata(tmp_path):
    folder = tmp_path / "set"
    csv = write_table(folder, table_rows(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)  # nothing here to warn about
        index = open_dataset(csv, views=("PA", "AP"))
    assert index.source == "table" and index.root == folder.resolve()
    assert index.labels == ("Effusion", "Pleural_Thickening")  # No Finding is not a label
    items = index.items.set_index("image_id")
    assert items["Effusion"].loc[["films/f00.png", "films/f01.png", "films/f06.png"]].tolist() == [
        1,
        0,
        0,
    ]
    assert items.loc["films/f00.png", "sex"] == "M" and items.loc["films/f00.png", "age"] == 30
    assert "films/f05.png" not in items.index  # view LL left out; unknown view (f00) kept
    assert set(items[items["split"] == "test"].index) == {"films/f21.png", "films/f22.png"}
    assert items.groupby("patient_id")["split"].nunique().max() == 1
    found = kinds(index)
    assert (
        found["uncertain_labels"].count == 6
        and "read as 0 (--uncertain zeros)" in found["uncertain_labels"].line()
    )
    assert "Frontal/Lateral" in found["columns_not_used"].examples
    assert found["other_views"].count == 8
    ones = open_dataset(csv, uncertain="ones").items.set_index("image_id")
    assert (
        ones.loc["films/f07.png", "Effusion"] == 1 and items.loc["films/f07.png", "Effusion"] == 0
    )


def test_tables_that_cannot_be_read_end_in_one_line(tmp_path, capsys):
    folder = tmp_path / "set"
    rows = table_rows(folder, 4)
    cases = {
        "nopath.csv": (
            [{k: v for k, v in r.items() if k != "Path"} for r in rows],
            "no path column",
        ),
        "outside.csv": ([rows[0] | {"Path": "../../etc/passwd.png"}], "lies outside"),
        "absolute.csv": ([rows[0] | {"Path": "/etc/x.png"}], "lies outside"),
        "twice.csv": ([rows[0], rows[0]], "more than once"),
        "none.csv": ([r | {"Path": "gone/" + r["Path"]} for r in rows], "none of the 4 films"),
        "split.csv": ([rows[0] | {"split": "holdout"}], "'holdout' is none of train"),
    }
    for name, (table, message) in cases.items():
        csv = write_table(folder, table, name)
        assert main(["data", str(csv), "--no-decode"]) == 2, name
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert message in line, (name, line)


def test_absent_films_of_a_table_are_counted_and_the_rest_used(tmp_path):
    folder = tmp_path / "set"
    rows = table_rows(folder, 12)
    rows[3]["Path"] = "films/missing.png"
    with pytest.warns(DatasetWarning, match="1 of 12 films listed in labels.csv are absent"):
        index = open_dataset(write_table(folder, rows))
    assert len(index.items) == 12 - 1 - 4  # and the LL views


def test_chexpert_paths_are_read_from_the_folder_above_with_patients_from_them(tmp_path):
    top = tmp_path / "CheXpert-v1.0-small"
    rows = []
    for i in range(12):
        relative = f"CheXpert-v1.0-small/train/patient{i // 3:05d}/study1/view{i % 3}_frontal.jpg"
        film(tmp_path / relative, i)
        rows.append({"Path": relative, "Sex": "Female", "Age": "60", "Frontal/Lateral": "Frontal",
                     "AP/PA": "AP", "No Finding": "", "Edema": ["1", "-1", "0"][i % 3]})  # fmt: skip
    index = open_dataset(write_table(top, rows, "train.csv"))
    assert index.root == tmp_path.resolve() and index.labels == ("Edema",)
    assert index.items["patient_id"].nunique() == 4
    assert (
        kinds(index)["patients"].message == "patients read from names: 12 by CheXpert patient<id>/"
    )


def test_the_data_command_reports_and_its_json_holds_the_same(tmp_path, capsys):
    kaggle_tree(tmp_path)
    assert main(["data", str(tmp_path), "--val-fraction", "0.2"]) == 0
    text = capsys.readouterr().out
    assert "class folders" in text and "labels: Pneumonia" in text
    assert "2 groups of byte-identical files" in text
    assert "2 patients have films in train and in test" in text
    assert "films decoded: " in text
    assert main(["data", str(tmp_path), "--val-fraction", "0.2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["labels"] == ["Pneumonia"] and report["source"] == "class_folders"
    assert sum(part["films"] for part in report["splits"].values()) == report["films"]
    assert {f["kind"] for f in report["findings"]} >= {"identical_files", "debris", "decoded"}


REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata-pneumonia"
needs_real = pytest.mark.skipif(
    not (REAL / "chest_xray").is_dir(), reason="../shared/realdata-pneumonia is absent"
)


@needs_real
def test_the_real_paediatric_folder(tmp_path):
    """Kermany et al.'s train/ as shared: 1,341 + 3,875 films, 24 byte-identical groups, every
    patient read from the names, no patient in two splits."""
    index = open_dataset(REAL)
    found = kinds(index)
    assert index.root == (REAL / "chest_xray").resolve() and index.labels == ("Pneumonia",)
    assert found["identical_files"].count == 24
    assert "NORMAL 1,341 (no finding), PNEUMONIA 3,875 -> Pneumonia" in found["classes"].message
    assert len(index.items) == 5216 - 26
    assert "film:" not in found["patients"].message and found["patients"].count == 5190
    assert index.items.groupby("patient_id")["split"].nunique().max() == 1
    assert index.split_method == "patient"  # no test/ here: a seeded carve-out
    virus = found["kermany_virus_counter_gaps"]
    assert "virus_1 to virus_149 are all absent" in virus.message


def test_a_real_layout_in_a_symlinked_subset_reads_like_the_original(tmp_path):
    # A user's own subset made of links to the films reads the same (links are followed).
    root = tmp_path / "subset"
    for i in range(4):
        source = film(tmp_path / "store" / f"{i}.png", i)
        target = root / ("NORMAL" if i % 2 else "PNEUMONIA") / f"{i}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(source, target)
    index = open_dataset(root)
    assert len(index.items) == 4 and index.labels == ("Pneumonia",)
