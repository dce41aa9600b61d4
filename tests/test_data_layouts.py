"""Loaders on small trees in the exact published layouts (reduced counts via the class knobs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from faceblur_bench.data import mspl, shen, sr, vw300
from faceblur_bench.data.kernels import KERNEL_SIZES, spline_kernel
from faceblur_bench.data.real import PEOPLE, REAL_IMAGES
from faceblur_bench.data.status import split_status
from faceblur_bench.engine import open_split
from faceblur_bench.errors import DataLayoutError, DataNotFoundError, UnknownNameError

RNG = np.random.default_rng(0)
_IMG_CACHE: dict[tuple[int, int], bytes] = {}


def png(path: Path, w: int = 128, h: int | None = None) -> Path:
    h = h or w
    path.parent.mkdir(parents=True, exist_ok=True)
    if (w, h) not in _IMG_CACHE:
        import io

        buf = io.BytesIO()
        Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
        _IMG_CACHE[(w, h)] = buf.getvalue()
    path.write_bytes(_IMG_CACHE[(w, h)])
    return path


def make_mspl(root: Path, variant: str = "center", names=("000001", "000002"), subsets=mspl.MSPL_SUBSETS) -> Path:
    top = root / f"Test_data_{variant}"
    for sub in subsets:
        folder, ids = mspl.MSPL_SUBSETS[sub]
        d = top / f"Test_data_{folder}"
        for n in names:
            png(d / f"{folder}_gt" / f"{n}.png")
            for k in KERNEL_SIZES:
                for kid in ids:
                    png(d / f"{folder}_blur" / f"{n}_ker{kid:02d}_blur_k{k}.png")
    return top


def make_shen(root: Path, folder: str = "Helen", names=("100040183_1", "1629243_1")) -> Path:
    top = root / f"Test_data_{folder}"
    for n in names:
        png(top / f"final_{folder}_gt" / f"{n}.png")
        for k in KERNEL_SIZES:
            for kid in range(1, 11):
                png(top / f"final_{folder}_blur" / f"{n}_ker{kid:02d}_blur_k{k}.png")
    return top


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(mspl._MSPL, "EXPECTED_IMAGES", 2)
    monkeypatch.setattr(shen._Shen, "EXPECTED_IMAGES", 2)
    monkeypatch.setattr(sr.CelebAHQSR8, "EXPECTED_IMAGES", 3)
    monkeypatch.setattr(vw300.VW300, "EXPECTED", {5: 2, 7: 1, 9: 0, 11: 0, 13: 0})


def test_mspl_full_and_subsets(tmp_path, small):
    make_mspl(tmp_path)
    split = open_split("mspl-center", tmp_path)
    samples = split.samples()
    assert len(samples) == 3 * 2 * 80
    assert len({s.id for s in samples}) == len(samples)
    ff = open_split("mspl-center/ffhq", tmp_path).samples()
    assert len(ff) == 160 and {s.meta["subset"] for s in ff} == {"ffhq"}
    assert {s.meta["kernel_id"] for s in ff} == set(range(21, 31))
    s = ff[0]
    assert s.sharp.name == f"{s.meta['image']}.png" and s.sharp.parent.name == "FFHQ_gt"
    assert s.blurred.name == f"{s.meta['image']}_ker{s.meta['kernel_id']:02d}_blur_k{s.meta['kernel_size']}.png"
    assert split.kernel(s) is None  # no kernel files in this tree
    with pytest.raises(UnknownNameError):
        open_split("mspl-center/ffhq-hq", tmp_path)
    with pytest.raises(DataNotFoundError, match="Test_data_random"):
        open_split("mspl-random", tmp_path).samples()


def test_mspl_mat_kernels(tmp_path, small):
    make_mspl(tmp_path, subsets=("celeba",))
    kdir = tmp_path / "test250kernels"
    kdir.mkdir()
    for k in KERNEL_SIZES:
        ks = np.stack([spline_kernel(k, seed=3, index=i) for i in range(30)], axis=2)  # K x K x N as released
        scipy.io.savemat(kdir / f"blur_k{k}.mat", {f"blurs_k{k}": ks})
    split = open_split("mspl-center/celeba", tmp_path)
    s = [x for x in split.samples() if x.meta["kernel_size"] == 19 and x.meta["kernel_id"] == 4][0]
    assert np.allclose(split.kernel(s), spline_kernel(19, seed=3, index=3))
    # a kernel file that does not sum to 1 is refused with the file named
    bad = np.stack([spline_kernel(19, seed=3, index=i) * 3 for i in range(30)], axis=2)
    scipy.io.savemat(kdir / "blur_k19.mat", {"blurs_k19": bad})
    with pytest.raises(DataLayoutError, match="blur_k19.*sums to 3"):
        open_split("mspl-center/celeba", tmp_path).kernel(s)


def test_mspl_bad_inputs(tmp_path, small):
    top = make_mspl(tmp_path, subsets=("celeba",))
    blur = top / "Test_data_CelebA" / "CelebA_blur"
    gt = top / "Test_data_CelebA" / "CelebA_gt"
    # full split needs all subsets
    with pytest.raises(DataLayoutError, match="Test_data_CelebA-HQ"):
        open_split("mspl-center", tmp_path).samples()
    part = open_split("mspl-center", tmp_path, allow_partial=True)
    assert len(part.samples()) == 160 and part.partial
    # missing blurred file
    (blur / "000001_ker03_blur_k21.png").unlink()
    with pytest.raises(DataLayoutError, match="000001_ker03_blur_k21.png is missing"):
        open_split("mspl-center/celeba", tmp_path).samples()
    p = open_split("mspl-center/celeba", tmp_path, allow_partial=True)
    assert len(p.samples()) == 159 and p.partial
    png(blur / "000001_ker03_blur_k21.png")
    # blurred file without ground truth
    png(blur / "000009_ker01_blur_k13.png")
    with pytest.raises(DataLayoutError, match="000009_ker01_blur_k13.png: no ground truth"):
        open_split("mspl-center/celeba", tmp_path).samples()
    (blur / "000009_ker01_blur_k13.png").unlink()
    # unexpected names and ids
    png(blur / "000001_blur_k13.png")
    with pytest.raises(DataLayoutError, match="unexpected file name"):
        open_split("mspl-center/celeba", tmp_path).samples()
    (blur / "000001_blur_k13.png").unlink()
    png(blur / "000001_ker11_blur_k13.png")  # id 11 belongs to CelebA-HQ
    with pytest.raises(DataLayoutError, match="kernel id 11"):
        open_split("mspl-center/celeba", tmp_path).samples()
    (blur / "000001_ker11_blur_k13.png").unlink()
    # non-128 / non-square images
    png(gt / "000002.png", 128, 100)
    with pytest.raises(DataLayoutError, match=r"000002.png: image is 128x100, expected 128x128"):
        open_split("mspl-center/celeba", tmp_path).samples()
    png(gt / "000002.png", 256)
    with pytest.raises(DataLayoutError, match="256x256"):
        open_split("mspl-center/celeba", tmp_path).samples()
    png(gt / "000002.png")
    # count against the release
    mspl._MSPL.EXPECTED_IMAGES = 80
    with pytest.raises(DataLayoutError, match="2 ground-truth images, the release has 80"):
        open_split("mspl-center/celeba", tmp_path).samples()


def test_shen_layout(tmp_path, small):
    make_shen(tmp_path, "Helen")
    make_shen(tmp_path / "shen", "CelebA", names=("182701", "182702"))
    h = open_split("shen-helen", tmp_path).samples()
    assert len(h) == 160 and h[0].id == "100040183_1_ker01_blur_k13"
    assert sorted({s.meta["kernel_size"] for s in h}) == list(KERNEL_SIZES)
    c = open_split("shen-celeba", tmp_path).samples()
    assert len(c) == 160 and c[0].sharp.parent.name == "final_CelebA_gt" and c[0].meta["subset"] == "celeba"
    (tmp_path / "Test_data_Helen" / "final_Helen_gt" / "1629243_1.png").unlink()
    with pytest.raises(DataLayoutError, match="no ground truth"):
        open_split("shen-helen", tmp_path).samples()


def make_300vw(root: Path, windows: dict[int, list[tuple[str, int]]]) -> None:
    for n, wins in windows.items():
        for vid, start in wins:
            frames = [f"{i:06d}" for i in range(start, start + n)]
            mid = frames[(n - 1) // 2]
            png(root / "300vw" / "blur" / vid / f"blur{n:03d}" / f"{mid}.png", 256)
            for f in frames:
                png(root / "300vw" / "sharp" / vid / f"blur{n:03d}" / mid / f"{f}.png", 256)


def test_300vw_layout(tmp_path, small):
    make_300vw(tmp_path, {5: [("009", 1), ("522", 6)], 7: [("037", 1)]})
    make_300vw(tmp_path, {5: [("001", 1)]})  # a training video in the same folders: ignored
    split = open_split("300vw", tmp_path)
    samples = split.samples()
    assert len(samples) == 3
    s = [x for x in samples if x.meta["video"] == "037"][0]
    assert s.meta["n_frames"] == 7 and len(s.frames) == 7
    assert s.sharp == s.frames[3] and s.sharp.name == "000004.png"
    assert [f.name for f in s.frames] == sorted(f.name for f in s.frames)
    assert len(open_split("300vw/n5", tmp_path).samples()) == 2
    # a window whose sharp frames are incomplete
    (tmp_path / "300vw/sharp/009/blur005/000003/000001.png").unlink()
    with pytest.raises(DataLayoutError, match="4 sharp frames"):
        open_split("300vw", tmp_path).samples()
    p = open_split("300vw", tmp_path, allow_partial=True)
    assert len(p.samples()) == 2 and p.partial


def test_sr8_layout(tmp_path, small):
    (tmp_path / "celebahq-sr8" / "val_GT").mkdir(parents=True)
    for n in ("10001", "10002", "10003"):
        png(tmp_path / "celebahq-sr8" / "valx8" / f"{n}.png", 32)
        Image.fromarray(np.zeros((256, 256, 3), np.uint8)).save(tmp_path / "celebahq-sr8" / "val_GT" / f"{n}.jpg")
    split = open_split("celebahq-sr8", tmp_path)
    samples = split.samples()
    assert split.scale == 8 and len(samples) == 3 and samples[0].sharp.suffix == ".jpg"
    png(tmp_path / "celebahq-sr8" / "valx8" / "10003.png", 64)
    with pytest.raises(DataLayoutError, match="64x64, expected 32x32"):
        open_split("celebahq-sr8", tmp_path).samples()


def test_lai_real_layout(tmp_path):
    d = tmp_path / "lai-real"
    for n in REAL_IMAGES:
        png(d / f"{n}.png", 64, 48)
    split = open_split("lai-real", tmp_path)
    assert not split.has_reference
    samples = split.samples()
    assert len(samples) == 100 and all(s.sharp is None for s in samples)
    people = open_split("lai-real/people", tmp_path).samples()
    assert [s.id for s in people] == list(PEOPLE) and len(people) == 12
    png(d / "holiday_snap.png")
    with pytest.raises(DataLayoutError, match="holiday_snap.png: not one of the 100"):
        split.samples()
    (d / "holiday_snap.png").unlink()
    (d / "face2.png").unlink()
    with pytest.raises(DataLayoutError, match="face2.png is missing"):
        open_split("lai-real", tmp_path).samples()
    assert len(open_split("lai-real", tmp_path, allow_partial=True).samples()) == 99


def test_split_status_reports_found_and_missing(tmp_path, small):
    make_shen(tmp_path, "Helen")
    recs = {r["name"]: r for r in split_status(tmp_path)}
    assert set(recs) >= {"demo", "mspl-center", "mspl-random", "shen-helen", "shen-celeba", "300vw",
                         "celebahq-sr8", "lai-real"}
    assert recs["shen-helen"]["found"] and recs["shen-helen"]["samples"] == 160
    assert not recs["mspl-center"]["found"] and "Test_data_center" in recs["mspl-center"]["where"]
    assert "CelebA_blur" in recs["mspl-center"]["layout"]
    assert not recs["demo"]["found"] and "first use" in recs["demo"]["error"]
    assert not (tmp_path / "demo").exists()


def test_mspl_center_accepts_the_authors_folder_name(tmp_path, small):
    """SAPPGAN's test/blur_gen.py writes MSPL-Center under Test_data_ver01_CentorCrop."""
    make_mspl(tmp_path)
    (tmp_path / "Test_data_center").rename(tmp_path / "Test_data_ver01_CentorCrop")
    split = open_split("mspl-center/celeba", tmp_path)
    assert split.find().name == "Test_data_ver01_CentorCrop"
    assert len(split.samples()) == 2 * 80


def test_300vw_follows_the_authors_test_list(tmp_path, small):
    from faceblur_bench.data.manifest import split_files

    make_300vw(tmp_path, {5: [("009", 1), ("522", 6)], 7: [("037", 1)]})
    lst = tmp_path / "300vw" / vw300.FILE_LIST
    # FMR order differs from temporal order; 522's window is on disk but not listed
    lst.write_text("009 blur005 000003 000005 000004 000003 000002 000001\n"
                   "037 blur007 000004 000002 000001 000003 000004 000007 000006 000005\n")
    split = open_split("300vw", tmp_path)
    samples = split.samples()
    assert [s.id for s in samples] == ["009/blur005/000003", "037/blur007/000004"]
    assert [f.stem for f in samples[0].frames] == ["000005", "000004", "000003", "000002", "000001"]
    assert samples[0].sharp.name == "000003.png" and samples[1].meta["frame_order"] == "fmr-list"
    # the release's counts (here the `small` fixture's), not the list's: a list is no release
    assert split.expected_counts() == {"windows": 3} and not split.partial
    assert open_split("300vw/n7", tmp_path).expected_counts() == {"windows": 1}
    assert lst in split_files(split, samples)
    # without the list: every window on disk, temporal order
    lst.rename(tmp_path / "list.txt")
    plain = open_split("300vw", tmp_path).samples()
    assert len(plain) == 3 and plain[0].meta["frame_order"] == "temporal"
    assert [f.stem for f in plain[0].frames] == sorted(f.stem for f in plain[0].frames)
    (tmp_path / "list.txt").rename(lst)
    # a listed frame missing -> named; usable (marked partial) only with allow_partial
    (tmp_path / "300vw/sharp/037/blur007/000004/000007.png").unlink()
    with pytest.raises(DataLayoutError, match=r"000007\.png: listed in .*test_filelist\.txt but missing"):
        open_split("300vw", tmp_path).samples()
    p = open_split("300vw", tmp_path, allow_partial=True)
    assert [s.id for s in p.samples()] == ["009/blur005/000003"] and p.partial
    # malformed lines name the file and line
    lst.write_text("009 blur005 000003 000005 000004 000003 000002 000001\n009 blur005 000008 000006 000007\n")
    with pytest.raises(DataLayoutError, match=r"test_filelist\.txt:2: window 009/blur005/000008 lists 2 frames"):
        open_split("300vw", tmp_path).samples()
    lst.write_text("009 blur05 000003 000005\n")
    with pytest.raises(DataLayoutError, match=r"test_filelist\.txt:1: cannot read"):
        open_split("300vw", tmp_path).samples()


def test_shen_celeba_mspl_verification_lists(tmp_path, small):
    from faceblur_bench.data import shen as shen_mod
    from faceblur_bench.data.manifest import split_files
    from faceblur_bench.metrics.verification import build_pairs, pair_source

    top = make_shen(tmp_path, "CelebA", names=("1", "10"))
    assert "positive" not in open_split("shen-celeba", tmp_path).samples()[0].meta
    (top / shen_mod.PAIR_LISTS[0]).write_text("1 024091.jpg\n10 038345.jpg\n")
    (top / shen_mod.PAIR_LISTS[1]).write_text("1 005330.jpg\n10 020531.jpg\n")
    with pytest.raises(DataLayoutError, match="no CelebA image folder"):
        open_split("shen-celeba", tmp_path).samples()
    cdir = tmp_path / "celebA" / "img_align_celeba"
    for f in ("024091", "038345", "005330", "020531"):
        png(cdir / f"{f}.jpg", 178, 218)
    split = open_split("shen-celeba", tmp_path)
    samples = split.samples()
    s = [x for x in samples if x.meta["image"] == "10"][0]
    assert s.meta["positive"] == str(cdir / "038345.jpg") and s.meta["negative"] == str(cdir / "020531.jpg")
    assert pair_source(samples, None) == "meta-files"
    pairs, _ = build_pairs(samples, None)
    assert len(pairs) == 2 * len(samples) and pairs[0].same and not pairs[-1].same
    files = split_files(split, samples)
    assert top / shen_mod.PAIR_LISTS[0] in files and cdir / "024091.jpg" in files
    # a face without a partner, and a malformed line, are named
    (top / shen_mod.PAIR_LISTS[1]).write_text("1 005330.jpg\n")
    with pytest.raises(DataLayoutError, match="no partner for face 10"):
        open_split("shen-celeba", tmp_path).samples()
    (top / shen_mod.PAIR_LISTS[1]).write_text("1 005330.jpg extra\n")
    with pytest.raises(DataLayoutError, match=r"negative_mod\.txt:1: cannot read"):
        open_split("shen-celeba", tmp_path).samples()


def test_relative_data_root_is_resolved_once(tmp_path, small, monkeypatch):
    """``--data-root data`` (relative, with the ``shen/`` level): partner paths are absolute and
    exist, not joined to the split directory a second time."""
    from faceblur_bench.data import shen as shen_mod
    from faceblur_bench.metrics.verification import build_pairs

    top = make_shen(tmp_path / "data" / "shen", "CelebA", names=("1",))
    (top / shen_mod.PAIR_LISTS[0]).write_text("1 024091.jpg\n")
    (top / shen_mod.PAIR_LISTS[1]).write_text("1 005330.jpg\n")
    for f in ("024091", "005330"):
        png(tmp_path / "data" / "shen" / "celebA" / "img_align_celeba" / f"{f}.jpg", 178, 218)
    monkeypatch.setattr(shen._Shen, "EXPECTED_IMAGES", 1)
    monkeypatch.chdir(tmp_path)
    split = open_split("shen-celeba", "data/shen")
    assert split.data_root == tmp_path / "data" / "shen"
    s = split.samples()[0]
    assert Path(s.meta["positive"]).is_absolute() and Path(s.meta["positive"]).is_file()
    from faceblur_bench.metrics.base import MetricContext

    pairs, _ = build_pairs(split.samples(), MetricContext("cpu", split=split))
    assert len(pairs) == 160 and all(p.partner[0] == "file" and p.partner[1].is_file() for p in pairs)
