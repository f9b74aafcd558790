"""The ChestX-ray14 reader on generated folders that mimic the real files, and on the real metadata."""

from __future__ import annotations

import gzip
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from cxr_attention.core.data.chestxray14 import read_data_entry
from cxr_attention.core.data.index import DatasetWarning
from cxr_attention.core.data.phantom import generate_phantom
from cxr_attention.core.data.sources import open_dataset
from cxr_attention.core.data.splits import check_patient_disjoint, patient_split
from cxr_attention.core.errors import ConfigError, DatasetError
from cxr_attention.core.labels import ALL14, PAPER13, canonical_label

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"

# (patient, age, sex, view, findings) per image; images are named <patient:08d>_<follow-up:03d>.png.
PATIENTS: dict[int, list[tuple[str, str, str, str]]] = {
    1: [("57", "M", "PA", "Cardiomegaly"), ("58", "M", "PA", "Cardiomegaly|Emphysema")],
    2: [("80", "M", "PA", "No Finding")],
    3: [("81", "F", "AP", "Hernia"), ("148", "F", "AP", "Hernia|Infiltration")],
    4: [("39", "F", "PA", "Pleural_Thickening"), ("39", "F", "AP", "Effusion|Mass|Nodule")],
    5: [("412", "M", "AP", "No Finding"), ("60", "M", "PA", "Pneumothorax")],
    6: [("45", "F", "PA", "Atelectasis|Consolidation|Edema")],
    7: [
        ("33", "M", "AP", "Effusion"),
        ("33", "M", "AP", "Infiltration"),
        ("34", "M", "PA", "No Finding"),
    ],
    8: [("70", "F", "PA", "Fibrosis|Pneumonia"), ("71", "F", "PA", "Nodule")],
}
TEST_PATIENTS = {7, 8}
BOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
# (image, label as the box file writes it, x, y, w, h) in the 1024 x 1024 frame.
BOXES = [
    ("00000007_000.png", "Effusion", 512.0, 256.0, 128.0, 64.0),
    ("00000007_001.png", "Infiltrate", 100.5, 200.25, 300.0, 400.0),
    ("00000008_001.png", "Nodule", 800.0, 640.0, 32.0, 32.0),
]


def image_name(patient: int, follow_up: int) -> str:
    return f"{patient:08d}_{follow_up:03d}.png"


def rows() -> list[tuple[str, int, int, str, str, str, str]]:
    return [
        (image_name(patient, k), k, patient, age, sex, view, findings)
        for patient, films in PATIENTS.items()
        for k, (age, sex, view, findings) in enumerate(films)
    ]


def synthetic_film(name: str, size: int) -> np.ndarray:
    """A small uint8 image that differs per name (a gradient and a bright disc)."""
    seed = sum(map(ord, name))
    y, x = np.mgrid[0:size, 0:size]
    image = (x * 3 + y * 2 + seed) % 200
    cx, cy = seed % size, (seed * 7) % size
    image[(x - cx) ** 2 + (y - cy) ** 2 < (size // 6) ** 2] = 250
    return image.astype(np.uint8)


def write_label_file(root: Path, version: str = "2017") -> Path:
    """Data_Entry as NIH ships it: 2017 has a trailing empty column; v2020's header spans cells."""
    header = (
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
        "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
    )
    lines = [header + ("," if version == "2017" else "")]
    for name, follow_up, patient, age, sex, view, findings in rows():
        line = f"{name},{findings},{follow_up},{patient},{age},{sex},{view},2500,2048,0.168,0.168"
        lines.append(line + ("," if version == "2017" else ""))
    path = root / ("Data_Entry_2017.csv" if version == "2017" else "Data_Entry_2017_v2020.csv")
    path.write_text("\n".join(lines) + "\n")
    return path


def make_tree(
    root: Path,
    layout: str = "flat",
    version: str = "2017",
    size: int = 48,
    lists: bool = True,
    boxes: bool = True,
) -> Path:
    """A folder in ChestX-ray14 layout: label file, lists, box file, tiny PNGs (one RGBA)."""
    root.mkdir(parents=True, exist_ok=True)
    write_label_file(root, version)
    names = [row[0] for row in rows()]
    for index, name in enumerate(names):
        folder = (
            root / "images"
            if layout == "flat"
            else root / f"images_{index // 6 + 1:03d}" / "images"
        )
        folder.mkdir(parents=True, exist_ok=True)
        image = synthetic_film(name, size)
        if name == "00000004_001.png":  # a few NIH originals are RGBA
            alpha = np.full_like(image, 255)
            image = np.dstack([image, image, image, alpha])
        cv2.imwrite(str(folder / name), image)
    if lists:
        test = [row[0] for row in rows() if row[2] in TEST_PATIENTS]
        (root / "test_list.txt").write_text("\n".join(test))  # no trailing newline, like NIH's
        (root / "train_val_list.txt").write_text(
            "\n".join(name for name in names if name not in test)
        )
    if boxes:
        body = [",".join([name, label, *map(repr, box)]) for name, label, *box in BOXES]
        (root / "BBox_List_2017.csv").write_text("\n".join([BOX_HEADER, *body]) + "\n")
    return root


def open_quietly(root: Path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        return open_dataset(root, **kwargs)


def test_reads_every_listed_image_with_labels_metadata_and_paths(tmp_path):
    index = open_quietly(make_tree(tmp_path / "data"))
    items = index.items.set_index("image_id")
    assert len(items) == len(rows()) and index.labels == ALL14
    assert list(index.items.columns[:7]) == [
        "image_id",
        "path",
        "patient_id",
        "age",
        "sex",
        "view",
        "split",
    ]
    assert list(index.items.columns[7:]) == list(ALL14)
    assert items.loc["00000001_001.png", ["Cardiomegaly", "Emphysema"]].tolist() == [1, 1]
    assert items.loc["00000001_001.png", list(ALL14)].sum() == 2
    assert items.loc["00000002_000.png", list(ALL14)].sum() == 0  # No Finding: all negative
    assert items.loc["00000004_000.png", "Pleural_Thickening"] == 1
    assert items.loc["00000004_001.png", ["Effusion", "Mass", "Nodule"]].tolist() == [1, 1, 1]
    assert (
        items.loc["00000004_001.png", "view"] == "AP"
        and items.loc["00000004_001.png", "sex"] == "F"
    )
    assert items["patient_id"].dtype == np.int64
    assert all(Path(path).is_absolute() and Path(path).is_file() for path in items["path"])
    assert index.source == "chestxray14" and index.split_method == "official"
    targets = index.targets(index.items)
    assert targets.dtype == np.float32 and targets.shape == (len(rows()), 14)
    assert targets.sum() == index.items[list(ALL14)].to_numpy().sum() == 19


def test_both_download_layouts_and_both_label_files_give_the_same_index(tmp_path):
    flat = open_quietly(make_tree(tmp_path / "flat", layout="flat", version="2017"))
    nested = open_quietly(make_tree(tmp_path / "nested", layout="nested", version="v2020"))
    assert (tmp_path / "nested" / "images_003" / "images").is_dir()
    columns = [c for c in flat.items.columns if c != "path"]
    pd.testing.assert_frame_equal(flat.items[columns], nested.items[columns])
    pd.testing.assert_frame_equal(flat.boxes, nested.boxes)


def test_impossible_ages_become_nan_with_one_warning(tmp_path):
    root = make_tree(tmp_path / "data")
    with pytest.warns(DatasetWarning) as record:
        index = open_dataset(root)
    age_warnings = [w for w in record if "ages over 120" in str(w.message)]
    assert len(age_warnings) == 1 and str(age_warnings[0].message).startswith("2 ages")
    items = index.items.set_index("image_id")
    assert np.isnan(items.loc["00000003_001.png", "age"]) and np.isnan(
        items.loc["00000005_000.png", "age"]
    )
    assert items.loc["00000001_000.png", "age"] == 57.0


def test_ages_written_as_058Y_are_read(tmp_path):
    root = make_tree(tmp_path / "data")
    label_file = root / "Data_Entry_2017.csv"
    label_file.write_text(label_file.read_text().replace(",57,M,PA,", ",057Y,M,PA,"))
    items = open_quietly(root).items.set_index("image_id")
    assert items.loc["00000001_000.png", "age"] == 57.0


def test_partial_download_trains_on_present_images_with_one_warning_counting_the_absent(tmp_path):
    root = make_tree(tmp_path / "data", layout="nested")
    absent = sorted(p.name for p in (root / "images_002" / "images").iterdir())
    shutil.rmtree(root / "images_002")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = open_dataset(root)
    partial = [w for w in caught if "absent" in str(w.message)]
    assert len(partial) == 1 and issubclass(partial[0].category, DatasetWarning)
    total = len(rows())
    assert f"{len(absent)} of {total} images" in str(partial[0].message)
    assert f"using the {total - len(absent)} present" in str(partial[0].message)
    assert len(index.items) == total - len(absent)
    assert not set(absent) & set(index.items["image_id"])
    assert index.n_absent == len(absent)


def test_no_images_at_all_is_a_clear_error(tmp_path):
    root = make_tree(tmp_path / "data")
    shutil.rmtree(root / "images")
    with pytest.raises(DatasetError, match="images_0XX/images"):
        open_quietly(root)


def test_missing_label_file_names_the_expected_files(tmp_path):
    root = make_tree(tmp_path / "data")
    (root / "Data_Entry_2017.csv").unlink()
    with pytest.raises(DatasetError) as error:
        open_dataset(root)
    message = str(error.value)
    assert "Data_Entry_2017.csv" in message and "Data_Entry_2017_v2020.csv" in message
    assert "\n" not in message
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(tmp_path / "nowhere")


def test_unknown_finding_name_is_refused(tmp_path):
    root = make_tree(tmp_path / "data")
    label_file = root / "Data_Entry_2017.csv"
    label_file.write_text(
        label_file.read_text().replace("Fibrosis|Pneumonia", "Fibrosis|Pneumonitis")
    )
    with pytest.raises(DatasetError, match="Pneumonitis"):
        open_quietly(root)


def test_official_split_test_is_the_test_list_and_validation_is_carved_by_patient(tmp_path):
    root = make_tree(tmp_path / "data")
    index = open_quietly(root, val_fraction=0.25, seed=3)
    items = index.items
    test_list = set((root / "test_list.txt").read_text().split("\n"))
    assert set(items.loc[items["split"] == "test", "image_id"]) == test_list
    assert set(items.loc[items["split"] == "test", "patient_id"]) == TEST_PATIENTS
    val = index.split("val")
    assert len(val) >= 0.25 * (len(items) - len(test_list)) and set(val["patient_id"]) <= {
        1,
        2,
        3,
        4,
        5,
        6,
    }
    assert list(val.index) == list(range(len(val)))  # re-indexed for positional use
    check_patient_disjoint(items["patient_id"].to_numpy(), items["split"].to_numpy())
    for patient, group in items.groupby("patient_id"):
        assert group["split"].nunique() == 1, patient
    again = open_quietly(root, val_fraction=0.25, seed=3)
    pd.testing.assert_frame_equal(items, again.items)
    vals = {
        tuple(sorted(set(open_quietly(root, val_fraction=0.25, seed=s).split("val")["patient_id"])))
        for s in range(8)
    }
    assert len(vals) > 1  # the seed matters


def test_without_lists_the_split_is_by_patient_and_seeded(tmp_path):
    root = make_tree(tmp_path / "data", lists=False)
    index = open_quietly(root, val_fraction=0.2, seed=1)
    assert index.split_method == "patient" and index.seed == 1
    assert set(index.items["split"]) == {"train", "val", "test"}
    for _, group in index.items.groupby("patient_id"):
        assert group["split"].nunique() == 1
    pd.testing.assert_frame_equal(index.items, open_quietly(root, val_fraction=0.2, seed=1).items)


def test_patient_split_fractions_on_many_patients():
    patients = np.repeat(np.arange(2000), np.random.default_rng(0).integers(1, 6, 2000))
    split = patient_split(patients, val_fraction=0.1, test_fraction=0.2, seed=0)
    fraction = {name: float(np.mean(split == name)) for name in ("train", "val", "test")}
    assert abs(fraction["test"] - 0.2) < 0.01 and abs(fraction["val"] - 0.08) < 0.01
    check_patient_disjoint(patients, split)


def test_a_patient_in_both_lists_is_refused(tmp_path):
    root = make_tree(tmp_path / "data")
    train_val = root / "train_val_list.txt"
    test = root / "test_list.txt"
    moved = "00000001_001.png"  # patient 1 keeps 00000001_000 in train_val
    train_val.write_text("\n".join(n for n in train_val.read_text().split("\n") if n != moved))
    test.write_text(test.read_text() + "\n" + moved)
    with pytest.raises(DatasetError, match="patient 1 in test and train"):
        open_quietly(root)


def test_only_one_split_list_is_refused(tmp_path):
    root = make_tree(tmp_path / "data")
    (root / "test_list.txt").unlink()
    with pytest.raises(DatasetError, match="test_list.txt"):
        open_quietly(root)


def test_view_filter_and_label_sets(tmp_path):
    root = make_tree(tmp_path / "data")
    pa = open_quietly(root, views=("PA",))
    assert set(pa.items["view"]) == {"PA"}
    assert len(pa.items) == sum(row[5] == "PA" for row in rows())
    both = open_quietly(root)
    # The split of an image does not depend on the view filter.
    merged = pa.items.merge(both.items, on="image_id", suffixes=("_pa", "_all"))
    assert (merged["split_pa"] == merged["split_all"]).all()
    assert pa.fingerprint == both.fingerprint
    paper = open_quietly(root, labels="paper13")
    assert paper.labels == PAPER13 and "Hernia" not in paper.items.columns
    assert paper.targets(paper.items).shape == (len(rows()), 13)
    with pytest.raises(ConfigError, match="PA and AP"):
        open_quietly(root, views=("LL",))
    with pytest.raises(ConfigError, match="all15 not among the labels"):
        open_quietly(root, labels="all15")


def test_boxes_parsed_canonical_and_scaled_to_the_image(tmp_path):
    root = make_tree(tmp_path / "data", size=64)
    boxes = open_quietly(root).boxes
    assert list(boxes.columns) == ["image_id", "label", "x", "y", "w", "h"]
    assert len(boxes) == 3
    infiltrate = boxes[boxes["image_id"] == "00000007_001.png"].iloc[0]
    assert infiltrate["label"] == "Infiltration"  # the box file says "Infiltrate"
    scale = 64 / 1024
    assert infiltrate[["x", "y", "w", "h"]].tolist() == pytest.approx(
        [100.5 * scale, 200.25 * scale, 300.0 * scale, 400.0 * scale]
    )
    # Boxes of images left out by the view filter go with them.
    assert len(open_quietly(root, views=("PA",)).boxes) == 1
    no_boxes = open_quietly(make_tree(tmp_path / "plain", boxes=False)).boxes
    assert (
        list(no_boxes.columns) == ["image_id", "label", "x", "y", "w", "h"] and len(no_boxes) == 0
    )


def test_phantom_source_and_masks(tmp_path):
    root = make_tree(tmp_path / "data", boxes=False)
    assert open_quietly(root).mask_paths("00000007_000.png") == {}
    (root / "PHANTOM.json").write_text("{}")
    masks = root / "masks"
    masks.mkdir()
    for label in ("Effusion", "Pleural_Thickening"):
        cv2.imwrite(str(masks / f"00000007_000_{label}.png"), np.zeros((48, 48), np.uint8))
    index = open_quietly(root)
    assert index.source == "phantom"
    found = index.mask_paths("00000007_000.png")
    assert sorted(found) == ["Effusion", "Pleural_Thickening"]
    assert found["Effusion"] == masks / "00000007_000_Effusion.png"
    assert index.mask_paths("00000008_000.png") == {}


def test_fingerprint_is_stable_and_follows_the_files(tmp_path):
    root = make_tree(tmp_path / "data")
    first = open_quietly(root).fingerprint
    assert first == open_quietly(root).fingerprint and len(first) == 16
    moved = tmp_path / "moved"
    shutil.move(root, moved)
    assert open_quietly(moved).fingerprint == first  # the folder's place is not part of it
    image = moved / "images" / "00000001_000.png"
    cv2.imwrite(str(image), synthetic_film("other", 40))
    changed = open_quietly(moved).fingerprint
    assert changed != first
    image.unlink()
    assert open_quietly(moved).fingerprint not in (first, changed)
    index = open_quietly(moved)
    assert index.files_fingerprint == index.fingerprint  # real data: identified by its files


def test_a_phantom_is_known_by_what_made_it_not_by_its_png_bytes(tmp_path):
    """The demo installs an evaluation only on the very films it was made on, also where another
    PNG encoder wrote them: re-encoded films keep the phantom's fingerprint."""
    root = tmp_path / "phantom"
    generate_phantom(root, n=30, size=64, seed=3, workers=1)
    first = open_quietly(root)
    films = sorted((root / "images").iterdir()) + sorted((root / "masks").iterdir())
    sizes = [path.stat().st_size for path in films]
    for path in films:  # the generator writes at compression 3
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert cv2.imwrite(str(path), pixels, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    changed = [p.stat().st_size != size for p, size in zip(films, sizes, strict=True)]
    assert sum(changed) > len(films) // 2
    again = open_quietly(root)
    assert again.fingerprint == first.fingerprint
    assert again.files_fingerprint != first.files_fingerprint  # the files did change
    shutil.move(root, tmp_path / "moved")
    assert open_quietly(tmp_path / "moved").fingerprint == first.fingerprint

    # another seed, a relabelled film, a missing film, or the test films alone: other data
    generate_phantom(tmp_path / "seed", n=30, size=64, seed=4, workers=1)
    generate_phantom(tmp_path / "test", n=30, size=64, seed=3, workers=1, splits=("test",))
    entries = tmp_path / "moved" / "Data_Entry_2017_v2020.csv"
    lines = entries.read_text().splitlines()
    name, labels, rest = lines[1].split(",", 2)
    lines[1] = ",".join([name, "Mass" if labels == "Hernia" else "Hernia", rest])
    entries.write_text("\n".join(lines) + "\n")
    relabelled = open_quietly(tmp_path / "moved").fingerprint
    (tmp_path / "moved" / "images" / name).unlink()
    missing = open_quietly(tmp_path / "moved").fingerprint
    others = [open_quietly(tmp_path / f).fingerprint for f in ("seed", "test")]
    found = [first.fingerprint, relabelled, missing, *others]
    assert len(set(found)) == len(found)


def test_reads_a_generated_phantom_with_its_boxes_and_masks(tmp_path):
    root = tmp_path / "phantom"
    generate_phantom(root, n=30, size=64, seed=0, workers=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)  # a complete set: nothing to warn about
        index = open_dataset(root)
    assert index.source == "phantom" and index.split_method == "official"
    assert len(index.items) == 30 and set(index.items["split"]) <= {"train", "val", "test"}
    check_patient_disjoint(index.items["patient_id"].to_numpy(), index.items["split"].to_numpy())
    assert len(index.boxes) > 0
    for box in index.boxes.itertuples():
        mask = cv2.imread(str(index.mask_paths(box.image_id)[box.label]), cv2.IMREAD_GRAYSCALE)
        rows, cols = np.nonzero(mask)
        # Phantom boxes are in the image's own pixels: the mask's bounding box, unscaled.
        assert (box.x, box.y) == (cols.min(), rows.min())
        assert (box.w, box.h) == (cols.max() - cols.min() + 1, rows.max() - rows.min() + 1)


# --- the real metadata files (../shared/realdata), when present ---------------------------------

REFERENCE_COUNTS = {  # label: (all, train_val, test), from REFERENCE.md
    "No Finding": (60361, 50500, 9861),
    "Infiltration": (19894, 13782, 6112),
    "Effusion": (13317, 8659, 4658),
    "Atelectasis": (11559, 8280, 3279),
    "Nodule": (6331, 4708, 1623),
    "Mass": (5782, 4034, 1748),
    "Pneumothorax": (5302, 2637, 2665),
    "Consolidation": (4667, 2852, 1815),
    "Pleural_Thickening": (3385, 2242, 1143),
    "Cardiomegaly": (2776, 1707, 1069),
    "Emphysema": (2516, 1423, 1093),
    "Edema": (2303, 1378, 925),
    "Fibrosis": (1686, 1251, 435),
    "Pneumonia": (1431, 876, 555),
    "Hernia": (227, 141, 86),
}


def real_file(name: str) -> Path:
    path = REALDATA / name
    if not path.is_file():
        pytest.skip(f"real ChestX-ray14 metadata not available ({path})")
    return path


def test_real_label_file_reproduces_the_reference_counts():
    table = read_data_entry(real_file("Data_Entry_2017_v2020.csv.gz"))
    assert len(table) == 112_120 and table["patient_id"].nunique() == 30_805
    assert table["view"].value_counts().to_dict() == {"PA": 67_310, "AP": 44_810}
    test_names = set(real_file("test_list.txt").read_text().split())
    train_val_names = set(real_file("train_val_list.txt").read_text().split())
    assert (len(train_val_names), len(test_names)) == (86_524, 25_596)
    is_test = table["image_id"].isin(test_names)
    assert int(table["image_id"].isin(train_val_names).sum()) == 86_524
    for label, (n_all, n_train_val, n_test) in REFERENCE_COUNTS.items():
        positive = (
            (table[list(ALL14)].sum(axis=1) == 0) if label == "No Finding" else table[label] == 1
        )
        counts = (
            int(positive.sum()),
            int((positive & ~is_test).sum()),
            int((positive & is_test).sum()),
        )
        assert counts == (n_all, n_train_val, n_test), label
    test_patients = set(table.loc[is_test, "patient_id"])
    train_val_patients = set(table.loc[~is_test, "patient_id"])
    assert (len(train_val_patients), len(test_patients)) == (28_008, 2_797)
    assert not test_patients & train_val_patients


def test_real_folder_with_a_partial_download(tmp_path):
    """The real metadata with the 23 sample PNGs: everything else counts as not downloaded."""
    for name in (
        "Data_Entry_2017_v2020.csv.gz",
        "BBox_List_2017.csv.gz",
        "train_val_list.txt",
        "test_list.txt",
    ):
        real_file(name)
    root = tmp_path / "nih"
    (root / "images_001" / "images").mkdir(parents=True)
    (root / "Data_Entry_2017_v2020.csv").write_bytes(
        gzip.decompress(real_file("Data_Entry_2017_v2020.csv.gz").read_bytes())
    )
    (root / "BBox_List_2017.csv").write_bytes(
        gzip.decompress(real_file("BBox_List_2017.csv.gz").read_bytes())
    )
    for name in ("train_val_list.txt", "test_list.txt"):
        (root / name).symlink_to(REALDATA / name)
    pngs = sorted((REALDATA / "images").glob("000*.png"))
    for png in pngs:
        (root / "images_001" / "images" / png.name).symlink_to(png)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = open_dataset(root, val_fraction=0.1, seed=0)
    partial = [str(w.message) for w in caught if "absent" in str(w.message)]
    assert len(partial) == 1 and f"{112_120 - len(pngs):,} of 112,120" in partial[0]
    assert len(index.items) == len(pngs) == 23
    manifest = pd.read_csv(REALDATA / "manifest.csv")
    manifest = (
        manifest[manifest["filename"].str.contains("/000")]
        .assign(image_id=lambda m: m["filename"].str.split("/").str[-1])
        .set_index("image_id")
    )
    items = index.items.set_index("image_id")
    for image_id, row in manifest.iterrows():
        item = items.loc[image_id]
        assert item["patient_id"] == row["patient_id"] and item["view"] == row["view"]
        assert (item["split"] == "test") == (row["official_split"] == "test")
        # One manifest row adds expert notes after " | ".
        expected = set(row["labels"].split(" | ")[0].split("|")) - {"No Finding"}
        assert {label for label in ALL14 if item[label] == 1} == expected
        if isinstance(row["bbox_xywh_1024"], str):
            for entry in row["bbox_xywh_1024"].split(";"):
                label, numbers = entry.split(":")
                mine = index.boxes[
                    (index.boxes["image_id"] == image_id)
                    & (index.boxes["label"] == canonical_label(label))
                ]
                assert len(mine) == 1, (image_id, label)
                expected_box = [float(v) for v in numbers.split(",")]
                assert mine[["x", "y", "w", "h"]].iloc[0].tolist() == pytest.approx(
                    expected_box, abs=0.05
                )
    # Every sample image with boxes in the manifest has them here; 1024 px PNGs keep the file's
    # coordinates.
    assert index.boxes["image_id"].nunique() == manifest["bbox_xywh_1024"].notna().sum() == 17
    box = index.boxes[index.boxes["image_id"] == "00002704_029.png"].iloc[0]
    assert box["label"] == "Cardiomegaly"
    assert box[["x", "y", "w", "h"]].tolist() == pytest.approx(
        [333.6, 331.7, 446.9, 367.7], abs=0.05
    )
    assert set(index.boxes["label"]) <= set(ALL14)
