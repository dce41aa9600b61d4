"""Hostile inputs (issue 24): symlinks in and out of every root, FIFOs, tampered stored files,
numbers that are not numbers, full and read-only disks, escape codes in names.

Every case is built for real (links, FIFOs, a tmpfs) and asserts: nothing written or read
outside the roots, no hang (bounded by a timeout), no traceback, the documented exit code,
nothing already stored lost. The commands run in-process on 16x16 images (``score --out``), so
each case takes a second or two."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import main_inprocess as _cli
from faceblur_bench.errors import ResultsWarning
from faceblur_bench.imageio import write_png


def _tree(d: Path) -> dict[str, bytes | None]:
    """Everything under ``d`` (names and bytes), to show nothing was written there."""
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))}


def _bounded(fn, timeout: float = 20.0):
    """``fn()`` in a thread; fails (instead of hanging the suite) when it blocks."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 — handed back to the test
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"{fn} blocked for more than {timeout} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    """``gt/`` and ``out/`` with two 16x16 images each, and ``outside/`` holding a victim file."""
    d = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    for sub in ("gt", "out"):
        for name in ("a", "b"):
            write_png(d / sub / f"{name}.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    (d / "outside").mkdir()
    (d / "outside" / "victim").write_bytes(b"precious\n")
    return d


def _score(folders: Path, out: Path, capsys, *extra: str) -> tuple[int, str, str]:
    return _cli(["score", "--restored", str(folders / "out"), "--reference", str(folders / "gt"),
                 "--metrics", "psnr", "--device", "cpu", "--out", str(out), *extra], capsys)


@pytest.fixture(scope="module")
def stored(folders, tmp_path_factory) -> Path:
    """A results directory holding one scored run (copied by each test that tampers with it)."""
    import sys

    from faceblur_bench.cli import main

    out = tmp_path_factory.mktemp("stored") / "res"
    old = sys.argv  # capsys is function-scoped: the command line is run by hand here
    sys.argv = ["faceblur-bench", "score", "--restored", str(folders / "out"), "--reference",
                str(folders / "gt"), "--metrics", "psnr", "--device", "cpu", "--out", str(out)]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = old
    assert exc.value.code in (0, None)
    return out


def _copy(stored: Path, tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "res"
    shutil.copytree(stored, out, symlinks=True)
    (run_dir,) = out.glob("runs/*/blurred/*")
    return out, run_dir


# -- 1. writes outside --out ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rows.jsonl", "sessions.jsonl", ".lock", "images"])
def test_a_link_planted_in_a_run_directory_is_never_written_through(name, folders, stored, tmp_path, capsys):
    out, run_dir = _copy(stored, tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir() if name == "images" else victim.write_bytes(b"precious\n")
    for f in ("rows.jsonl", "sessions.jsonl"):  # the next run must compute (and write) again
        (run_dir / f).unlink()
    if (run_dir / name).exists():
        (run_dir / name).unlink()
    (run_dir / name).symlink_to(victim)
    before = _tree(tmp_path / "victim") if victim.is_dir() else victim.read_bytes()
    code, _, err = _score(folders, out, capsys)
    assert code == 2, err
    assert f"{name} is a symlink to {victim}" in err and "Traceback" not in err
    assert (_tree(victim) if victim.is_dir() else victim.read_bytes()) == before


def test_runs_linked_out_of_out_and_the_reference_cache_are_refused(folders, tmp_path, capsys):
    from faceblur_bench.metrics.reference_cache import ReferenceCache

    out, elsewhere = tmp_path / "res", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "runs").symlink_to(elsewhere)
    code, _, err = _score(folders, out, capsys)
    assert code == 2 and "runs is a symlink to" in err, err
    assert list(elsewhere.iterdir()) == []
    (out / "cache").symlink_to(elsewhere)
    cache = ReferenceCache(disk_root=out / "cache" / "reference", split_fingerprint="f", results_root=out)
    cache._write(("ns", "gt"), 1)
    assert cache._path(("ns", "gt")) is None and list(elsewhere.iterdir()) == []


def test_an_atomic_write_under_out_refuses_a_planted_link_or_linked_folder(tmp_path):
    from faceblur_bench.errors import ResultsPathError
    from faceblur_bench.results import atomic_write_text

    out, victim = tmp_path / "res", tmp_path / "victim"
    out.mkdir()
    victim.write_bytes(b"precious\n")
    (out / "leaderboard.md").symlink_to(victim)
    with pytest.raises(ResultsPathError, match="leaderboard.md is a symlink to"):
        atomic_write_text(out / "leaderboard.md", "table\n", root=out)
    assert victim.read_bytes() == b"precious\n"
    atomic_write_text(tmp_path / "named.md", "table\n")  # a file the user names: no root
    (out / "tables").symlink_to(tmp_path)
    with pytest.raises(ResultsPathError, match="outside the results directory"):
        atomic_write_text(out / "tables" / "t.md", "x", root=out)
    assert not (tmp_path / "t.md").exists()


# -- 2. reads outside the data root --------------------------------------------------------------
def test_folder_split_and_make_split_refuse_a_link_out_of_their_folder(folders, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "x.jpg").symlink_to(folders / "outside" / "victim")
    (photos / "p.png").symlink_to("/etc/passwd")
    code, _, err = _cli(["run", "-m", "blurred", "--split", f"folder:{photos}", "--data-root",
                         str(tmp_path / "data"), "--metrics", "psnr", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "is a symlink to" in err and "outside" in err, err
    assert not (tmp_path / "data" / "folder").exists() and not (tmp_path / "r").exists()
    sharp = tmp_path / "sharp"
    sharp.mkdir()
    write_png(sharp / "f1.png", np.zeros((128, 128, 3), np.uint8))
    (sharp / "x.png").symlink_to(folders / "outside" / "victim")
    code, _, err = _cli(["make-split", "--sharp", str(sharp), "--protocol", "shen", "--subset", "helen",
                         "--out", str(tmp_path / "ms")], capsys)
    assert code == 2 and "--sharp image" in err and "is a symlink to" in err, err
    assert not (tmp_path / "ms").exists()


def _odd_folder(root: Path, outside: Path) -> Path:
    """A folder of one 128x128 face and every kind of entry a reader must skip (and name)."""
    import socket

    d = root / "faces"
    d.mkdir()
    write_png(d / "f1.png", np.zeros((128, 128, 3), np.uint8))
    (d / "notes.txt").write_text("not an image\n")  # a file of another kind: skipped quietly
    (d / "inner").mkdir()  # a plain subfolder: quietly not searched
    write_png(d / "inner" / "f2.png", np.zeros((128, 128, 3), np.uint8))
    os.mkfifo(d / "pipe.png")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(d / "s.sock"))
    (d / "innerlink").symlink_to("inner")
    (d / "outlink").symlink_to(outside)  # a folder outside the root: not followed
    (d / "gone.png").symlink_to("nowhere.png")  # inside, dangling
    return d


SKIPPED = {"gone.png": "is a dangling symlink (its target does not exist)",
           "innerlink": "is a symlink to a folder (subfolders are not read)",
           "outlink": "is a symlink leading outside the folder (not followed)",
           "pipe.png": "is a FIFO, not a regular file", "s.sock": "is a socket, not a regular file"}


def test_folder_readers_name_what_they_skip_and_read_nothing_outside(folders, tmp_path, capsys):
    from faceblur_bench.data.photos import _photos
    from faceblur_bench.files import folder_entries

    d = _odd_folder(tmp_path, folders / "outside")
    files, skipped = _bounded(lambda: folder_entries(d, [".png"]))  # a FIFO is never opened
    assert files == [d / "f1.png"]
    assert {s["file"]: s["reason"] for s in skipped} == SKIPPED
    with pytest.warns(UserWarning, match=r"faces: 5 entries skipped, not regular files: gone.png is a "
                      r"dangling symlink .*; innerlink is a symlink to a folder .*; outlink is a symlink "
                      r"leading outside the folder \(not followed\); and 2 more"):
        assert _photos(d) == [d / "f1.png"]  # the folder: split's photo list
    code, out, err = _bounded(lambda: _cli(["make-split", "--sharp", str(d), "--protocol", "shen",
                                            "--subset", "helen", "--out", str(tmp_path / "ms")], capsys), 120)
    assert code == 0, err
    said = " ".join((out + err).split())
    assert f"{d}: 5 entries skipped, not regular files: gone.png" in said and "and 2 more" in said, said
    (man_path,) = (tmp_path / "ms").glob("*/make_split.json")
    man = json.loads(man_path.read_text())
    assert {s["file"]: s["reason"] for s in man["skipped_not_files"]} == SKIPPED
    assert len(man["images"]) == 1  # f1 alone: inner/f2.png (linked twice) was not read


# -- 3. hangs ------------------------------------------------------------------------------------
def test_a_fifo_named_like_an_image_or_a_stored_file_never_blocks(tmp_path):
    from faceblur_bench.errors import ImageError
    from faceblur_bench.files import sha256_file
    from faceblur_bench.imageio import image_size, read_image
    from faceblur_bench.results import read_sessions, scan_rows

    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="FIFO"):
        _bounded(lambda: read_image(fifo))
    with pytest.raises(ImageError, match="FIFO"):
        _bounded(lambda: image_size(fifo))
    with pytest.raises(OSError, match="FIFO"):
        _bounded(lambda: sha256_file(fifo))
    os.mkfifo(tmp_path / "rows.jsonl")
    os.mkfifo(tmp_path / "sessions.jsonl")
    with pytest.warns(ResultsWarning, match="rows.jsonl: not read"):
        assert _bounded(lambda: scan_rows(tmp_path / "rows.jsonl")).rows == []
    with pytest.warns(ResultsWarning, match="sessions.jsonl: not read"):
        assert _bounded(lambda: read_sessions(tmp_path)) == []


def test_a_fifo_restored_file_is_missing_not_a_hang(folders, tmp_path, capsys):
    restored = tmp_path / "out"
    shutil.copytree(folders / "out", restored)
    (restored / "b.png").unlink()
    os.mkfifo(restored / "b.png")
    code, _, err = _bounded(lambda: _cli(["score", "--restored", str(restored), "--reference",
                                          str(folders / "gt"), "--metrics", "psnr"], capsys))
    # a FIFO is no restored file: that image is a failed row (the other is scored), exit 1
    assert code == 1 and "1 of 2 image(s) failed" in err, err


# -- 4. tampered provenance ----------------------------------------------------------------------
@pytest.mark.parametrize("field,value", [("data_origin", "official"), ("sessions", "x"),
                                         ("metrics", [1, 2]), ("world_size", "2")])
def test_tampered_summary_sessions_and_rows_are_discarded_with_a_warning(field, value, folders, stored,
                                                                        tmp_path, capsys):
    out, run_dir = _copy(stored, tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, field: value}))
    with open(run_dir / "sessions.jsonl", "a") as f:
        f.write('{"index": "abc"}\nnull\n')
    rows_before = (run_dir / "rows.jsonl").read_bytes()
    with open(run_dir / "rows.jsonl", "a") as f:
        f.write(json.dumps({"id": "a", "status": "ok", "metrics": {"psnr": 99.0}, "session": "abc"}) + "\n")
    with pytest.warns(ResultsWarning, match=f"summary.json: '{field}'"):
        code, _, err = _cli(["leaderboard", "--results", str(out), "-o", str(tmp_path / "lb.md")], capsys)
    assert code == 0 and "Traceback" not in err, err
    with pytest.warns(ResultsWarning) as caught:
        code, stdout, err = _score(folders, out, capsys, "--metrics", "ssim")  # computes: a new session
    assert code == 0, err
    said = " ".join(str(w.message) for w in caught)
    assert "sessions.jsonl:2: session record discarded ('index' is not an integer" in said
    assert "sessions.jsonl:3: session record discarded (not an object" in said
    assert "rows.jsonl:3: row discarded ('session' is not an integer" in said
    assert (run_dir / "rows.jsonl").read_bytes().startswith(rows_before)  # nothing stored lost
    rebuilt = json.loads((run_dir / "summary.json").read_text())
    assert isinstance(rebuilt["data_origin"], dict) and isinstance(rebuilt["sessions"], list)
    assert rebuilt["metrics"]["psnr"]["value"] == summary["metrics"]["psnr"]["value"]  # not 99
    assert [s["index"] for s in rebuilt["sessions"]] == [0, 1]


@pytest.mark.parametrize("damage", ["torn-row", "appended-garbage"])
def test_damaged_rows_are_named_as_such_not_as_an_edited_summary(damage, folders, stored, tmp_path, capsys):
    """A malformed line of rows.jsonl is the rows file's damage: the warning names that file and
    its line, never "the summary was edited"; the run is still unverified (not ranked) until the
    same command runs again. An edited summary is still called edited."""
    from faceblur_bench.report.store import load_run

    out, run_dir = _copy(stored, tmp_path)
    rows_path = run_dir / "rows.jsonl"
    lines = rows_path.read_text().splitlines(keepends=True)
    if damage == "torn-row":  # a row the summary stands on is gone
        lines[1] = lines[1][:25] + "\n"
    else:  # every row intact, one line of garbage after them
        lines.append("not json at all\n")
    rows_path.write_text("".join(lines))
    bad = 2 if damage == "torn-row" else len(lines)
    with pytest.warns(ResultsWarning) as caught:
        run = load_run(run_dir)
    said = " ".join(str(w.message) for w in caught)
    assert (f"rows.jsonl has 1 malformed line (line {bad}): the rows file was damaged after the summary "
            "was sealed (it counted none)") in said, said
    assert "edited" not in said, said
    assert run.other["_verified"]["ok"] is False  # a damaged run never poses as a clean one
    code, lb, err = _cli(["leaderboard", "--results", str(out), "-o", str(tmp_path / "lb.md")], capsys)
    assert code == 0 and "unverified: rows.jsonl has 1 malformed line" in (tmp_path / "lb.md").read_text()
    with pytest.warns(ResultsWarning):
        code, _, err = _score(folders, out, capsys)  # the same command: rescored, sealed again
    assert code == 0, err
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = load_run(run_dir)
    assert run.other["_verified"]["ok"] is True and run.rows_discarded == 1
    assert not any("was damaged after" in str(w.message) for w in caught), [str(w.message) for w in caught]
    summary = json.loads((run_dir / "summary.json").read_text())  # now the summary alone is edited
    summary["metrics"]["psnr"]["value"] += 1.0
    (run_dir / "summary.json").write_text(json.dumps(summary))
    with pytest.warns(ResultsWarning, match="the summary was edited after it was sealed"):
        assert load_run(run_dir).other["_verified"]["ok"] is False


def test_rows_jsonl_as_a_directory_stops_the_run_and_keeps_it(folders, stored, tmp_path, capsys):
    out, run_dir = _copy(stored, tmp_path)
    (run_dir / "rows.jsonl").unlink()
    (run_dir / "rows.jsonl").mkdir()
    code, _, err = _score(folders, out, capsys)
    assert code == 2 and "rows.jsonl is a directory, not a file" in err and "Traceback" not in err
    assert (run_dir / "rows.jsonl").is_dir()
    code, _, err = _cli(["leaderboard", "--results", str(out), "-o", str(tmp_path / "lb.md")], capsys)
    assert code == 0, err


def test_a_feature_file_of_the_wrong_width_is_discarded_and_its_images_recomputed(tmp_path):
    from faceblur_bench.results import RunStore, feature_ids, read_features

    with RunStore(tmp_path / "run") as store:
        store.write_features("fid", ["a", "b"], np.ones((2, 4)))
        store.write_features("fid", ["c", "d"], np.ones((2, 4)))
        store.write_features("fid", ["e"], np.ones((1, 7)))  # tampered: another width
    with pytest.warns(ResultsWarning, match=r"feature file discarded \(rows of shape \(7,\)"):
        assert feature_ids(tmp_path / "run", "fid") == {"a", "b", "c", "d"}
    with pytest.warns(ResultsWarning):
        assert read_features(tmp_path / "run", "fid", ["a", "b", "c", "d", "e"]) is None
    with pytest.warns(ResultsWarning):
        assert read_features(tmp_path / "run", "fid", ["d", "a"]).shape == (2, 4)


# -- 6. numbers that are not numbers; results paths that cannot be written -----------------------
@pytest.mark.parametrize("args,what", [
    (["run", "--seed", "-1"], "--seed -1 is not an integer in [0, 4294967295]"),
    (["run", "--seed", "1180591620717411303424"], "is not an integer in [0, 4294967295]"),
    (["run", "--wait", "nan"], "--wait nan is not a number in [0, 86400]"),
    (["run", "--wait", "-1"], "--wait -1.0 is not a number in [0, 86400]"),
    (["make-split", "--sharp", "s", "--protocol", "mspl", "--out", "o", "--seed", "-1"], "--seed -1"),
    (["data", "kernels", "--out", "k", "--seed", "-5"], "--seed -5"),
])
def test_numeric_options_are_checked_at_the_door(args, what, capsys):
    code, _, err = _cli(args, capsys)
    assert code == 2 and what in err and "Traceback" not in err, err


@pytest.mark.parametrize("trainer,key,value,what", [
    ("yun", "optim.lr", "NaN", "config key optim.lr = nan is not a finite number"),
    ("yun", "optim.lr", "Infinity", "optim.lr = inf is not a finite number"),
    ("yun", "optim.lr", "abc", "optim.lr = 'abc' is not a number (built-in value: 0.0002)"),
    ("yun", "optim.lr", "-1", "optim.lr = -1: a learning rate is > 0"),
    ("yun", "loss.lambda_pix", "NaN", "loss.lambda_pix = nan is not a finite number"),
    ("yun", "loss.lambda_pix", "-1", "loss.lambda_pix = -1: a loss weight is >= 0"),
    ("sappgan", "optim.lr_d", "[1]", "optim.lr_d = [1] is not a number"),
    ("yun", "data.val_images", "2.5", "data.val_images = 2.5 is not an integer"),
])
def test_training_config_numbers_are_checked_at_the_door(trainer, key, value, what, tmp_path, capsys):
    """`train --set optim.lr=NaN` reached the optimizer (a ValueError traceback) or trained on a
    NaN loss: every number of a config file or --set is checked before anything is built."""
    code, _, err = _cli(["train", trainer, "--data-root", str(tmp_path / "none"), "--out", str(tmp_path / "t"),
                         "--tiny", "--set", f"{key}={value}"], capsys)
    assert code == 2 and what in " ".join(err.split()) and "Traceback" not in err, err
    assert not (tmp_path / "t").exists()


def test_make_split_noise_nan_and_out_in_sharp_are_refused_before_writing(tmp_path, capsys):
    sharp = tmp_path / "sharp"
    write_png(sharp / "f1.png", np.zeros((128, 128, 3), np.uint8))
    base = ["make-split", "--sharp", str(sharp), "--protocol", "shen", "--subset", "helen"]
    code, _, err = _cli([*base, "--out", str(tmp_path / "ms"), "--noise", "nan"], capsys)
    assert code == 2 and "--noise nan is not a number in [0, 1]" in err, err
    assert not (tmp_path / "ms").exists()
    before = _tree(sharp)
    for out, word in ((sharp, "--sharp itself"), (sharp / "sub", "inside --sharp")):  # family 9
        code, _, err = _cli([*base, "--out", str(out)], capsys)
        assert code == 2 and word in err, err
    assert _tree(sharp) == before


def test_out_a_file_runs_a_file_and_leaderboard_a_directory_are_clear_errors(folders, tmp_path, capsys):
    (tmp_path / "afile").write_bytes(b"mine\n")
    code, _, err = _score(folders, tmp_path / "afile", capsys)
    assert code == 2 and f"{tmp_path / 'afile'} is a file where a directory belongs" in err, err
    assert (tmp_path / "afile").read_bytes() == b"mine\n"
    (tmp_path / "r2").mkdir()
    (tmp_path / "r2" / "runs").write_bytes(b"")
    code, _, err = _score(folders, tmp_path / "r2", capsys)
    assert code == 2 and "runs is a file where a directory belongs" in err, err
    code, _, err = _cli(["leaderboard", "--results", str(tmp_path / "r2"), "-o", str(tmp_path)], capsys)
    assert code == 2 and "is a directory" in err and "Traceback" not in err, err


def test_read_only_and_full_results_disks(folders, stored, tiny_tmpfs, fill_disk, capsys):
    mnt, remount = tiny_tmpfs
    out = mnt / "res"
    shutil.copytree(stored, out, symlinks=True)
    (run_dir,) = out.glob("runs/*/blurred/*")
    sessions = run_dir / "sessions.jsonl"
    with open(sessions, "a") as f:  # blank lines (not data) up to a page: the next record needs a new one
        f.write("\n" * (-sessions.stat().st_size % 4096))
    before = _tree(out)
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    code, _, err = _score(folders, out, capsys, "--metrics", "ssim")
    assert code == 2 and "read-only file system" in err and "Traceback" not in err, err
    subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
    fill_disk(mnt / "filler")  # to the last byte
    code, _, err = _score(folders, out, capsys, "--metrics", "ssim")  # adds ssim: a session record
    # rich may wrap the long path: compare without spaces
    assert code == 1 and f"diskfullat{run_dir / 'sessions.jsonl'}".replace(" ", "") in err.replace(" ", ""), err
    assert "Traceback" not in err
    assert _tree(out) == before  # the session line was cut back, rows and summary as they were


# -- 7. exit codes -------------------------------------------------------------------------------
class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('EVIL_MARKER', '/nonexistent/x')}",))


def test_a_pickled_checkpoint_exits_2_and_never_runs(tmp_path, capsys, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    evil = tmp_path / "generator-1.pkl"
    evil.write_bytes(pickle.dumps({"g": _Evil()}))
    code, _, err = _cli(["run", "-m", "yun", "--checkpoint", str(evil), "--split", "demo", "--limit", "1",
                         "--metrics", "psnr", "--device", "cpu", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and str(evil) in err and "Traceback" not in err, err
    assert not marker.exists() and not (tmp_path / "r" / "runs").exists()


def test_strict_with_a_refused_weight_override_exits_2(tmp_path, capsys, demo_data_root):
    bad = tmp_path / "VGGFace16.pth"
    bad.write_bytes(os.urandom(256))
    code, _, err = _cli(["run", "-m", "blurred", "--split", "demo", "--limit", "1", "--metrics", "dvgg",
                         "--weights", f"vggface16={bad}", "--strict", "--device", "cpu",
                         "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "--strict: metric 'dvgg' cannot run" in err and "Traceback" not in err, err
    assert not list((tmp_path / "r").glob("runs/*/*/*/rows.jsonl"))


def test_sigint_handler_is_installed_even_when_sigint_was_ignored():
    """`nohup faceblur-bench ... &` hands SIGINT down as ignored: Ctrl-C / kill -INT must still
    store the summary and exit 130."""
    from faceblur_bench.cli import _install_signal_handlers, _restore_signal_handlers

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        previous = _install_signal_handlers()
        assert signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.SIG_DFL)
        _restore_signal_handlers(previous)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)


# -- 8. escape codes; 5. a bad photo; 9. stable reasons ------------------------------------------
def test_names_with_escape_codes_are_sanitised_in_every_output(tmp_path):
    from faceblur_bench.data.photos import PhotoFolder
    from faceblur_bench.report.render import latex_escape
    from faceblur_bench.results import split_slug

    name = "ph\x1b[2Jo\nto\x07s"
    folder = tmp_path / name
    folder.mkdir()
    split = PhotoFolder(tmp_path / "data", folder=folder)
    for text in (split.full_name, split_slug(split.full_name), split.crop_dir().name,
                 latex_escape(f"Results on {split.full_name}")):
        assert not any(ord(c) < 32 or ord(c) == 127 for c in text), repr(text)
    assert split.full_name == "folder:pho tos"


def test_a_bad_photo_is_a_listed_failed_row_and_the_good_ones_are_scored(tmp_path, capsys, monkeypatch):
    from PIL import Image
    from skimage import data as skdata

    photos = tmp_path / "ph\x1b[31moto\ns"  # escape codes in the folder name too (family 8)
    photos.mkdir()
    Image.fromarray(skdata.astronaut()).save(photos / "astronaut.jpg", quality=95)
    (photos / "empty.jpg").write_bytes(b"")
    good = (photos / "astronaut.jpg").read_bytes()
    (photos / "cut.jpg").write_bytes(good[: len(good) // 3])
    Image.new("RGB", (700, 700)).save(photos / "bomb.png")  # over the limit set below
    monkeypatch.setenv("FACEBLUR_MAX_IMAGE_PIXELS", "300000")
    out = tmp_path / "r"
    code, stdout, err = _cli(["run", "-m", "blurred", "--split", f"folder:{photos}", "--data-root",
                              str(tmp_path / "data"), "--metrics", "psnr", "--device", "cpu",
                              "--out", str(out)], capsys)
    assert code == 1 and "3 of 4 image(s) failed" in err and "Traceback" not in err, err
    assert "\x1b" not in stdout + err
    (summary_path,) = out.glob("runs/*/blurred/*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["split"] == "folder:photo s"
    reasons = {f["id"]: f["reason"] for f in summary["failures"]}
    assert set(reasons) == {"empty", "cut", "bomb"}
    assert "zero-byte" in reasons["empty"] and "pixel limit" in reasons["bomb"]
    assert summary["counts"]["ok"] == 1  # astronaut_00
    assert all(not any(ord(c) < 32 for c in p.name) for p in out.rglob("*"))
    code, latex, err = _cli(["table", "--results", str(out), "--split", "folder:photo s", "--format", "latex"],
                            capsys)
    assert code == 0 and "\x1b" not in latex and "\\caption" in latex, err


def test_decode_failure_reasons_are_stable_between_runs():
    from faceblur_bench.errors import ImageError
    from faceblur_bench.imageio import decode

    reasons = []
    for _ in range(2):
        with pytest.raises(ImageError) as exc:
            decode(b"this is not an image", "x.png")
        reasons.append(exc.value.message)
    assert reasons[0] == reasons[1] and " at 0x" not in reasons[0], reasons


def test_a_tampered_file_is_warned_about_once_per_command(demo_data_root, tmp_path):
    """A command reads a run's summary, sessions and rows at several steps (`run` read the summary
    three times): each tampered file (and line) is named once per command, by real `run`,
    `leaderboard` and `table` processes."""
    import sys

    out = tmp_path / "res"
    run = ["run", "-m", "blurred", "--split", "demo", "--limit", "2", "--metrics", "psnr", "--device", "cpu",
           "--out", str(out)]

    def stderr_of(*args: str, code: int = 0) -> str:
        r = subprocess.run([sys.executable, "-m", "faceblur_bench", *args], capture_output=True, text=True,
                           timeout=600, check=False, env={**os.environ, "PYTHONWARNINGS": "default"})
        assert r.returncode == code and "Traceback" not in r.stderr, r.stderr
        return r.stderr

    assert "ResultsWarning" not in stderr_of(*run)
    (run_dir,) = out.glob("runs/demo/blurred/*")
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "metrics": [1, 2]}))
    with open(run_dir / "sessions.jsonl", "a") as f:
        f.write('{"index": "abc"}\n')
    with open(run_dir / "rows.jsonl", "a") as f:
        f.write('{"id": 5, "status": "ok"}\n')
    # table: its only run skipped, nothing is left to show (exit 2, "no runs of split")
    for cmd, code in ((["leaderboard", "--results", str(out), "-o", str(tmp_path / "lb.md")], 0),
                      (["table", "--results", str(out), "--split", "demo"], 2)):
        err = stderr_of(*cmd, code=code)
        assert err.count("ResultsWarning") == 1 and "summary.json: 'metrics' is list" in err, err
    err = stderr_of(*run)
    for said in ("summary.json: 'metrics' is list", "sessions.jsonl:2: session record discarded",
                 "rows.jsonl:3: row discarded"):
        assert err.count(said) == 1, err
    assert err.count("ResultsWarning") == 3, err


def test_a_row_whose_meta_is_not_what_readers_group_by_is_discarded(stored_demo_runs, tmp_path, capsys):
    """`meta.kernel_size: "big"` in one row crashed `plot` and `report` (int() of it): the row
    reader discards such a row with a warning naming file and line, like any malformed row."""
    _, results = stored_demo_runs
    out = tmp_path / "res"
    shutil.copytree(results, out, symlinks=True)
    (run_dir,) = out.glob("runs/demo/wiener/*")
    lines = (run_dir / "rows.jsonl").read_text().splitlines()
    row = json.loads(lines[1])
    lines[1] = json.dumps({**row, "meta": {**row["meta"], "kernel_size": "big"}})
    (run_dir / "rows.jsonl").write_text("\n".join(lines) + "\n")
    for cmd in (["plot", "--split", "demo", "-o", str(tmp_path / "p.png")],
                ["report", "--split", "demo", "-o", str(tmp_path / "page")]):
        with pytest.warns(ResultsWarning, match=r"rows.jsonl:2: row discarded \('meta.kernel_size' is not an"):
            code, _, err = _cli([*cmd, "--results", str(out)], capsys)
        assert code == 0 and "Traceback" not in err, err
    assert (tmp_path / "p.png").stat().st_size and (tmp_path / "page" / "index.html").is_file()
