"""300VW frame-averaging blur test windows (CFMD-GAN): split ``300vw``, subsets ``n5`` .. ``n13``.

Layout written by ``dolphin0104/CFMDGAN:prepareDataset/genBlurDataset.py`` (PROTOCOLS.md §1)::

    <data_root>/300vw/blur/{vid}/blur{n:03d}/{mid}.png           blurred = mean of the n frames, 256x256
    <data_root>/300vw/sharp/{vid}/blur{n:03d}/{mid}/{frame}.png  all n sharp frames of the window

``{mid}`` is the (6-digit, zero-led) name of the window's middle frame, which is the ground truth.
Only the 9 test videos are read (the script writes train and test videos into the same folders);
the release test list holds 13,058 windows (2753 / 2677 / 2605 / 2530 / 2493 for n = 5..13).

The authors' list ``prepareDataset/test_filelist.txt`` (one window per line:
``VID blurNNN MID FRAME_1 ... FRAME_n``, frames in their FMR order -- sorted by left-eye
position, the order CFMD-GAN's moment control factor refers to) is not shipped; copy it to
``<data_root>/300vw/test_filelist.txt`` and the split follows it exactly: only listed windows,
each one required (a missing file is named), ``Sample.frames`` in the list's order, and the
list itself in the manifest. Without it: every window on disk of the test videos, frames in
temporal (file-name) order, counts checked against the release. meta: ``video``, ``n_frames``,
``mid_frame``, ``frame_order`` (``fmr-list`` or ``temporal``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataLayoutError
from ..registry import splits
from .base import Sample, Split
from .layout import check_size, first_dir

FILE_LIST = "test_filelist.txt"
TEST_VIDEOS: tuple[str, ...] = ("009", "010", "037", "039", "053", "158", "211", "406", "522")
EXPECTED_WINDOWS: dict[int, int] = {5: 2753, 7: 2677, 9: 2605, 11: 2530, 13: 2493}
_NDIR = re.compile(r"^blur(\d{3})$")


@splits.register("300vw")
class VW300(Split):
    name = "300vw"
    description = "300VW test windows (9 videos), blur = mean of n in {5,7,9,11,13} frames, 256x256, GT = middle frame"
    layout = ("<data_root>/300vw/blur/{vid}/blur{n:03d}/{mid}.png\n"
              "<data_root>/300vw/sharp/{vid}/blur{n:03d}/{mid}/{frame}.png   (n frames, 256x256)\n"
              f"test videos: {' '.join(TEST_VIDEOS)}; n in 5,7,9,11,13\n"
              f"optional: <data_root>/300vw/{FILE_LIST} (CFMD-GAN prepareDataset/) = exact windows + FMR frame order")
    subsets = tuple(f"n{n}" for n in EXPECTED_WINDOWS)
    #: expected windows per n (tests lower it); None = do not check counts
    EXPECTED: dict[int, int] | None = EXPECTED_WINDOWS
    IMAGE_PX = 256

    def candidates(self) -> list[Path]:
        return [self.data_root / "300vw", self.data_root / "300VW"]

    def find(self) -> Path:
        top = first_dir(self.candidates())
        if top is None or not (top / "blur").is_dir() or not (top / "sharp").is_dir():
            raise self.missing(self.data_root / "300vw")
        return top

    def _ns(self) -> list[int]:
        return [int(self.subset[1:])] if self.subset else list(EXPECTED_WINDOWS)

    def file_list(self) -> Path | None:
        """The authors' test list, when the user put it in the split folder."""
        top = first_dir(self.candidates())
        p = top / FILE_LIST if top is not None else None
        return p if p is not None and p.is_file() else None

    def extra_files(self) -> list[Path]:
        """Files the split depends on besides the samples' (hashed into the manifest)."""
        p = self.file_list()
        return [p] if p is not None else []

    def expected_counts(self) -> dict[str, int]:
        """The release's window counts (:data:`EXPECTED_WINDOWS`) for the selected n — also
        when a ``test_filelist.txt`` is given: a list with fewer windows is a subset of the
        release, not the release (``data_origin`` says "custom", never "official")."""
        if self.EXPECTED is None:  # counts not checked: whatever the given list holds
            fl = self.file_list()
            ns = set(self._ns())
            return {"windows": sum(1 for (_, n, _) in read_file_list(fl) if n in ns)} if fl else {}
        return {"windows": sum(self.EXPECTED.get(n, 0) for n in self._ns())}

    def samples(self) -> list[Sample]:
        top = self.find()
        ns = self._ns()
        counts = {n: 0 for n in ns}
        issues: list[str] = []
        out: list[Sample] = []
        px = (self.IMAGE_PX, self.IMAGE_PX)

        def problem(msg: str, hint: str) -> None:
            if not self.allow_partial:
                raise DataLayoutError(msg, hint + ", or pass allow_partial=True (--allow-partial)")
            issues.append(msg)

        fl = top / FILE_LIST
        if fl.is_file():
            return self._listed_samples(top, fl, ns, problem, issues)
        for vid in TEST_VIDEOS:
            vdir = top / "blur" / vid
            if not vdir.is_dir():  # absent videos show up in the window counts below
                continue
            for ndir in sorted(vdir.iterdir()):
                m = _NDIR.match(ndir.name)
                if not ndir.is_dir() or not m:
                    raise DataLayoutError(f"{ndir}: unexpected entry", "expected folders blur005, blur007, ..., blur013")
                n = int(m.group(1))
                if n not in EXPECTED_WINDOWS:
                    raise DataLayoutError(f"{ndir}: window length {n} is not one of 5,7,9,11,13",
                                          "use the CFMD-GAN window lengths")
                if n not in counts:
                    continue
                for bp in sorted(ndir.iterdir()):
                    if bp.name.startswith("."):
                        continue
                    if bp.suffix != ".png" or not bp.stem.isdigit():
                        raise DataLayoutError(f"{bp}: unexpected file name", "blurred windows are named {mid_frame}.png")
                    sdir = top / "sharp" / vid / ndir.name / bp.stem
                    frames = sorted(p for p in sdir.glob("*.png")) if sdir.is_dir() else []
                    if len(frames) != n:
                        problem(f"{sdir}: {len(frames)} sharp frames for {bp}, expected {n}",
                                "regenerate this window's sharp frames")
                        continue
                    centre = sdir / f"{bp.stem}.png"
                    if frames[(n - 1) // 2] != centre:
                        raise DataLayoutError(f"{sdir}: middle frame {centre.name} is not the centre of the window",
                                              "window folders are named after their middle frame")
                    check_size(bp, px)
                    check_size(centre, px)
                    counts[n] += 1
                    out.append(Sample(id=f"{vid}/{ndir.name}/{bp.stem}", blurred=bp, sharp=centre,
                                      frames=tuple(frames),
                                      meta={"video": vid, "n_frames": n, "mid_frame": bp.stem,
                                            "subset": f"n{n}", "frame_order": "temporal"}))
        if self.EXPECTED:
            for n in ns:
                if counts[n] != self.EXPECTED[n]:
                    problem(f"{top}: {counts[n]} windows of {n} frames, the release has {self.EXPECTED[n]}",
                            "regenerate the test windows with genBlurDataset.py (test_filelist.txt)")
        self.partial = bool(issues)
        if not out:
            raise DataLayoutError(f"{top}: no test windows found", f"expected layout:\n{self.layout}")
        return out

    def _listed_samples(self, top: Path, fl: Path, ns: list[int], problem, issues: list[str]) -> list[Sample]:
        """Samples exactly as the authors' test list names them (frames in its FMR order)."""
        px = (self.IMAGE_PX, self.IMAGE_PX)
        out: list[Sample] = []
        for (vid, n, mid), frames in sorted(read_file_list(fl).items()):
            if n not in ns:
                continue
            bp = top / "blur" / vid / f"blur{n:03d}" / f"{mid}.png"
            sdir = top / "sharp" / vid / f"blur{n:03d}" / mid
            paths = tuple(sdir / f"{f}.png" for f in frames)
            missing = [p for p in (bp,) + paths if not p.is_file()]
            if missing:
                problem(f"{missing[0]}: listed in {fl} but missing ({len(missing)} file(s) of this window)",
                        "regenerate the window with genBlurDataset.py")
                continue
            check_size(bp, px)
            check_size(sdir / f"{mid}.png", px)
            out.append(Sample(id=f"{vid}/blur{n:03d}/{mid}", blurred=bp, sharp=sdir / f"{mid}.png", frames=paths,
                              meta={"video": vid, "n_frames": n, "mid_frame": mid, "subset": f"n{n}",
                                    "frame_order": "fmr-list"}))
        self.partial = bool(issues)
        if not out:
            raise DataLayoutError(f"{top}: none of the windows in {fl} is present", f"expected layout:\n{self.layout}")
        return out


def read_file_list(path: Path) -> dict[tuple[str, int, str], tuple[str, ...]]:
    """``{(video, n, mid): frames}`` from CFMD-GAN's ``test_filelist.txt``; a malformed line is an
    error naming the file and line."""
    out: dict[tuple[str, int, str], tuple[str, ...]] = {}
    hint = f"expected lines 'VID blurNNN MID FRAME_1 ... FRAME_n' as in CFMD-GAN's prepareDataset/{FILE_LIST}"
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        t = line.split()
        if not t:
            continue
        m = _NDIR.match(t[1]) if len(t) > 1 else None
        if len(t) < 4 or m is None or not all(x.isdigit() for x in (t[0], *t[2:])):
            raise DataLayoutError(f"{path}:{i}: cannot read {line.strip()!r}", hint)
        n, mid, frames = int(m.group(1)), t[2], tuple(t[3:])
        if n not in EXPECTED_WINDOWS or len(frames) != n or mid not in frames or len(set(frames)) != n:
            raise DataLayoutError(f"{path}:{i}: window {t[0]}/{t[1]}/{mid} lists {len(frames)} frames "
                                  f"(middle frame {'present' if mid in frames else 'absent'}), expected {n} distinct "
                                  "frames including the middle one", hint)
        if (t[0], n, mid) in out:
            raise DataLayoutError(f"{path}:{i}: window {t[0]}/{t[1]}/{mid} listed twice", hint)
        out[(t[0], n, mid)] = frames
    return out
