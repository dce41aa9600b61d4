"""``folder:DIR``: faces of any folder of real photos, found by MTCNN and cropped by the demo
split's rule, scored with no-reference metrics only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from faceblur_bench import engine
from faceblur_bench.data.demo import SIZE, square_crop_box
from faceblur_bench.errors import DataNotFoundError, UsageError
from faceblur_bench.imageio import read_image


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(skdata.astronaut()).save(d / "astronaut.jpg", quality=95)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(d / "noise.png")
    (d / ".hidden.png").write_bytes(b"not an image")
    (d / "notes.txt").write_text("not a photo")
    return d


def test_faces_are_cropped_by_the_demo_rule_and_scored_without_ground_truth(photo_dir, tmp_path):
    split = engine.open_split(f"folder:{photo_dir}", tmp_path / "data")
    assert split.full_name == f"folder:{photo_dir.name}" and split.has_reference is False
    samples = split.samples()
    assert [s.id for s in samples] == ["astronaut_00"]
    s = samples[0]
    assert s.sharp is None and s.meta["photo"] == "astronaut.jpg" and s.meta["prob"] >= 0.95
    photo = read_image(photo_dir / "astronaut.jpg")
    top, left, side = square_crop_box(np.array(s.meta["box"]), *photo.shape[:2])
    assert [top, left, side] == s.meta["crop"]
    want = np.asarray(Image.fromarray(photo[top:top + side, left:left + side]).resize((SIZE, SIZE), Image.BICUBIC))
    np.testing.assert_array_equal(read_image(s.blurred), want)
    man = json.loads((split.crop_dir() / "manifest.json").read_text())
    assert man["photos_without_face"] == ["noise.png"] and set(man["photos"]) == {"astronaut.jpg", "noise.png"}

    summary = engine.evaluate(engine.RunConfig(
        method="blurred", split=f"folder:{photo_dir}", data_root=tmp_path / "data",
        results_dir=tmp_path / "r", metrics=["psnr", "detection-rate"], device="cpu"))
    assert summary["split"] == f"folder:{photo_dir.name}" and summary["has_reference"] is False
    assert summary["metrics"]["psnr"]["status"] == "not-applicable"
    assert summary["metrics"]["detection-rate"]["status"] == "ok"
    assert summary["metrics"]["detection-rate"]["value"] == 1.0  # the crop still shows the face
    # the photo left out is listed in the summary and under the table (issue 23), whose heading
    # does not call the photos "real blur"
    assert summary["data_origin"]["dropped"] == ["noise.png"]
    from faceblur_bench.report import store
    from faceblur_bench.report.tables import split_table

    text = split_table(store.load_summaries(tmp_path / "r"))
    assert "photos without ground truth" in text and "real blur" not in text
    assert f"folder:{photo_dir.name}: 1 photo(s) left out — no face passed detection: noise.png" in text


def test_crops_are_rebuilt_when_the_photos_change(photo_dir, tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    Image.open(photo_dir / "noise.png").save(d / "noise.png")
    split = engine.open_split(f"folder:{d}", tmp_path / "data")
    with pytest.raises(DataNotFoundError, match="found no face"):
        split.samples()
    Image.open(photo_dir / "astronaut.jpg").save(d / "b.png")
    assert [s.id for s in split.samples()] == ["b_00"]


def test_bad_folder_arguments():
    with pytest.raises(UsageError, match="needs a directory"):
        engine.open_split("folder:")
    with pytest.raises(DataNotFoundError, match="does not exist"):
        engine.open_split("folder:/nonexistent/photos").samples()
