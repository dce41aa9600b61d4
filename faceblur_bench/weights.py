"""Known pretrained files: name, file name, upstream URL, sha256, where they are cached, loaders.

Lookup order for a file ``F`` of entry ``NAME``:
1. an explicit override: per-run option (``--weights NAME=PATH``) or ``$FACEBLUR_WEIGHTS_<NAME>``
   (upper-case, ``-`` -> ``_``);
2. ``$FACEBLUR_WEIGHTS/F`` (a directory holding files under their upstream names);
3. where the upstream library caches it (``$TORCH_HOME/hub/checkpoints``,
   ``$TORCH_HOME/checkpoints``, ``~/.insightface/models/<pack>``, pyiqa's
   ``$TORCH_HOME/hub/pyiqa`` and ``$TORCH_HOME/hub/clip``), so files other tools
   already downloaded are reused; or, for files that a Python package ships (dlib's models in
   ``face-recognition-models``), the package's folder, located with ``importlib.util.find_spec``
   without importing the package;
4. ``~/.cache/faceblur_bench/weights/F`` (where ``faceblur-bench weights fetch`` puts files
   without an upstream cache).

Every file with a known sha256 is checked (once per process per path/size/mtime); a mismatch is
refused naming the file and the expected hash. Nothing here ever substitutes other weights: an
explicit override (step 1) that is not a file is an error (:class:`WeightsOverrideError`, exit 2),
never a reason to fall through to the other places.

Every path :func:`resolve` returns is reported to the active :func:`recording` blocks, so the
engine can store which file (path + sha256) each metric and the method actually used.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError, WeightsIntegrityError, WeightsMissingError, WeightsOverrideError
from .files import cache_dir, not_a_file, sha256_file, user_cache_root


@dataclass(frozen=True)
class WeightFile:
    name: str
    filename: str
    url: str
    #: sha256 of the upstream file, or None when upstream publishes none and we could not verify
    sha256: str | None
    #: "torch-hub" | "torch-checkpoints" | "insightface:<pack>" | "package:<module>/<folder>" |
    #: "pyiqa" | "clip" | "faceblur"
    cache: str
    description: str
    #: users other than registered metrics (metrics are found through their ``weights`` attribute)
    used_by: tuple[str, ...] = ()
    #: how to obtain it when the URL is not a direct download (e.g. Google Drive zip)
    manual: str = ""
    #: leading hex digits of the sha256 published in the file name (torch-hub convention:
    #: ``name-<prefix>.pth``); checked when the full ``sha256`` is unknown
    sha256_prefix: str | None = None
    #: when ``url`` is a zip archive: the member to extract (e.g. ``w600k_r50.onnx``)
    archive_member: str | None = None
    #: False when ``url`` is a web page (Google Drive, OneDrive), not a direct download
    downloadable: bool = True

    @property
    def hash_known(self) -> bool:
        """True when a full sha256 or a published sha256 prefix can be checked."""
        return self.sha256 is not None or self.sha256_prefix is not None

    def hash_matches(self, digest: str) -> bool:
        """Whether a file's full sha256 hex ``digest`` matches this entry (True when nothing known)."""
        if self.sha256 is not None:
            return digest == self.sha256
        if self.sha256_prefix is not None:
            return digest.startswith(self.sha256_prefix)
        return True

    def expected_hash(self) -> str:
        """Human-readable expected hash (full, or ``prefix…`` for torch-hub names)."""
        if self.sha256 is not None:
            return self.sha256[:16] + "…"
        if self.sha256_prefix is not None:
            return self.sha256_prefix + "… (prefix from the file name)"
        return "unknown"


KNOWN: dict[str, WeightFile] = {}


def register(wf: WeightFile) -> WeightFile:
    if wf.name in KNOWN and KNOWN[wf.name] != wf:
        raise ValueError(f"weight file {wf.name!r} registered twice")
    KNOWN[wf.name] = wf
    return wf


def get_entry(name: str) -> WeightFile:
    if name not in KNOWN:
        import difflib

        from .errors import UnknownNameError

        raise UnknownNameError("weight file", name, sorted(KNOWN),
                               difflib.get_close_matches(name, sorted(KNOWN), n=3))
    return KNOWN[name]


# -- cache locations -----------------------------------------------------------------------------
def torch_home() -> Path:
    env = os.environ.get("TORCH_HOME")
    if env:
        return Path(env).expanduser()
    return user_cache_root() / "torch"


def insightface_root() -> Path:
    return Path(os.environ.get("INSIGHTFACE_HOME", Path.home() / ".insightface")).expanduser()


def faceblur_cache() -> Path:
    return cache_dir("weights")


def package_dir(module: str) -> Path | None:
    """Folder of the installed top-level package ``module``, found without importing it.

    (``face_recognition_models/__init__.py`` imports ``pkg_resources``, which current setuptools
    no longer provides, so importing it would fail where its data files are fine.)
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a broken parent package / a blocked module
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def upstream_dir(wf: WeightFile) -> Path:
    """Where ``wf``'s upstream places it; for a package file whose package is absent, our cache."""
    if wf.cache.startswith("package:"):
        module, _, folder = wf.cache.split(":", 1)[1].partition("/")
        root = package_dir(module)
        return faceblur_cache() if root is None else root / folder
    if wf.cache == "torch-hub":
        return torch_home() / "hub" / "checkpoints"
    if wf.cache == "torch-checkpoints":
        return torch_home() / "checkpoints"
    if wf.cache in ("pyiqa", "clip"):  # pyiqa's cache and its CLIP loader's: torch.hub.get_dir()/...
        return torch_home() / "hub" / wf.cache
    if wf.cache.startswith("insightface:"):
        return insightface_root() / "models" / wf.cache.split(":", 1)[1]
    return faceblur_cache()


def env_override_var(name: str) -> str:
    return "FACEBLUR_WEIGHTS_" + name.upper().replace("-", "_").replace(".", "_")


def explicit_override(wf: WeightFile, overrides: dict[str, str] | None = None) -> tuple[Path, str] | None:
    """The explicit override of ``wf`` and where it was given (``--weights NAME=PATH`` wins over
    ``$FACEBLUR_WEIGHTS_<NAME>``), or None."""
    if overrides and wf.name in overrides:
        return Path(overrides[wf.name]).expanduser(), f"--weights {wf.name}="
    var = env_override_var(wf.name)
    if os.environ.get(var):
        return Path(os.environ[var]).expanduser(), f"${var}="
    return None


def check_overrides(overrides: dict[str, str] | None) -> None:
    """Refuse (:class:`WeightsOverrideError`) any ``NAME=PATH`` override whose NAME is unknown
    or whose PATH is not a file — before a run does any work."""
    for name, path in (overrides or {}).items():
        wf = get_entry(name)
        p = Path(path).expanduser()
        if p.is_symlink() and not p.exists() and _symlink_loop(p):
            continue  # resolve() names the loop
        if not p.is_file():
            raise _override_missing(wf, p, f"--weights {wf.name}=")


def _override_missing(wf: WeightFile, path: Path, given: str) -> WeightsOverrideError:
    what = not_a_file(path) or "is not a regular file"  # by stat: a FIFO is never opened
    return WeightsOverrideError(
        f"weight override {given}{path} for {wf.name} ({wf.filename}) {what}; an explicit "
        "override is never replaced by another file",
        f"fix the path: it must name the {wf.filename} file itself (a regular file, not a FIFO, "
        "socket or folder); or drop the override to use the default lookup (`faceblur-bench "
        "weights` lists where each file is found)")


def candidates(wf: WeightFile, overrides: dict[str, str] | None = None) -> list[Path]:
    """Every place ``wf`` is looked for, in order."""
    out: list[Path] = []
    if overrides and wf.name in overrides:
        out.append(Path(overrides[wf.name]).expanduser())
    if os.environ.get(env_override_var(wf.name)):
        out.append(Path(os.environ[env_override_var(wf.name)]).expanduser())
    if os.environ.get("FACEBLUR_WEIGHTS"):
        out.append(Path(os.environ["FACEBLUR_WEIGHTS"]).expanduser() / wf.filename)
    out.append(upstream_dir(wf) / wf.filename)
    if wf.cache != "faceblur":
        out.append(faceblur_cache() / wf.filename)
    return out


sha256_of = sha256_file  # the name this module's callers use


def check(wf: WeightFile, path: Path) -> None:
    """Raise :class:`WeightsIntegrityError` when ``path`` does not have the known sha256."""
    if not wf.hash_known:
        return
    got = sha256_of(path)
    if not wf.hash_matches(got):
        raise WeightsIntegrityError(
            f"weight file {wf.name!r} at {path} has sha256 {got[:16]}…, expected {wf.expected_hash()}",
            f"delete it and run `faceblur-bench weights fetch {wf.name}`, or point the override "
            f"at the genuine {wf.filename} ({wf.url})",
        )


def resolve(name: str, overrides: dict[str, str] | None = None, verify: bool = True) -> Path:
    """Path of the weight file ``name``; raises WeightsMissingError / WeightsIntegrityError, and
    WeightsOverrideError when an explicit override (option or ``$FACEBLUR_WEIGHTS_<NAME>``) is
    not a file. The returned path is reported to every active :func:`recording`."""
    wf = get_entry(name)
    looked = candidates(wf, overrides)
    explicit = explicit_override(wf, overrides)
    for i, p in enumerate(looked):
        if p.is_symlink() and not p.exists() and _symlink_loop(p):
            raise WeightsMissingError(f"{wf.filename} ({wf.name}) at {p} is a symlink loop (the link never "
                                      "reaches a file)", f"point {p} at the real {wf.filename}, or remove it")
        if p.is_file():
            if verify:
                check(wf, p)
            note_used([(wf.name, p)])
            return p
        if i == 0 and explicit is not None:
            raise _override_missing(wf, p, explicit[1])
    where = "\n".join(f"    {p}" + _unless_absent(p) for p in looked)
    how = wf.manual or f"run `faceblur-bench weights fetch {wf.name}`"
    err = WeightsMissingError(
        f"{wf.filename} not found ({wf.name}: {wf.description}); looked in:\n{where}",
        f"{how}; or place the file at {upstream_dir(wf) / wf.filename}; "
        f"or set {env_override_var(wf.name)}=PATH (source: {wf.url})",
    )
    err.short = short_missing(wf)
    raise err


# -- which files a run used -------------------------------------------------------------------------
_RECORDERS: list[list[tuple[str, Path]]] = []


@contextlib.contextmanager
def recording() -> Iterator[list[tuple[str, Path]]]:
    """Collect ``(name, path)`` of every weight file resolved inside the block (nested blocks
    all see it); a run wraps each metric's setup and the method's load in one."""
    used: list[tuple[str, Path]] = []
    _RECORDERS.append(used)
    try:
        yield used
    finally:
        _RECORDERS.remove(used)


def note_used(used: Iterable[tuple[str, Path]]) -> None:
    """Report files as used to the active recordings (e.g. a shared network built earlier)."""
    used = list(used)
    for rec in _RECORDERS:
        for item in used:
            if item not in rec:
                rec.append(item)


def used_record(used: Iterable[tuple[str, Path]]) -> list[dict[str, str]]:
    """``[{"name", "path", "sha256"}]`` of recorded files (absolute paths), for the summary."""
    out = []
    for name, path in used:
        p = Path(path).absolute()
        out.append({"name": name, "path": str(p), "sha256": sha256_of(p)})
    return out


def _unless_absent(path: Path) -> str:
    """``" (is a FIFO, not a regular file)"`` for a looked-in place that holds something other
    than the file; "" where nothing is (by stat: nothing is opened)."""
    why = not_a_file(path)
    return "" if why in (None, "does not exist") else f"  ({why})"


def _symlink_loop(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False
def short_missing(wf: WeightFile) -> str:
    """One line for a table footnote: the file is missing and how to get it. A file that
    ``weights fetch`` cannot download says "manual download" (the steps are in
    ``faceblur-bench weights --json``)."""
    if wf.downloadable and wf.url.startswith(("http://", "https://")):
        return f"{wf.filename} not found (`faceblur-bench weights fetch {wf.name}` or --weights {wf.name}=PATH)"
    return (f"{wf.filename} not found (manual download: steps in `faceblur-bench weights --json`; "
            f"then place it in its cache folder or pass --weights {wf.name}=PATH)")


@dataclass
class Status:
    entry: WeightFile
    path: Path | None
    size: int | None
    hash_ok: bool | None  # None: not checked (missing, or no known hash)
    detail: str


def status(names: Iterable[str] | None = None, overrides: dict[str, str] | None = None,
           hash_files: bool = True) -> list[Status]:
    out = []
    for name in sorted(names or KNOWN):
        wf = get_entry(name)
        explicit = explicit_override(wf, overrides)
        why = not_a_file(explicit[0]) if explicit is not None else None
        if why is not None:  # a run would refuse it, not fall through to the other places
            out.append(Status(wf, None, None, None, f"override {explicit[1]}{explicit[0]} {why}"))
            continue
        path = next((p for p in candidates(wf, overrides) if p.is_file()), None)
        if path is None:
            out.append(Status(wf, None, None, None, "missing"))
            continue
        size = path.stat().st_size
        if not wf.hash_known or not hash_files:
            out.append(Status(wf, path, size, None, "found (no known sha256)" if not wf.hash_known else "found"))
            continue
        ok = wf.hash_matches(sha256_of(path))
        out.append(Status(wf, path, size, ok, "ok" if ok else "sha256 mismatch"))
    return out


def fetch(name: str, timeout: float = 30.0,
          progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download ``name`` to its upstream cache location with sha256 check (atomic rename)."""
    wf = get_entry(name)
    if not wf.downloadable or not wf.url.startswith(("http://", "https://")):
        raise UsageError(f"{wf.name} ({wf.filename}) cannot be downloaded automatically",
                         wf.manual or f"download it from {wf.url} and place it at "
                         f"{upstream_dir(wf) / wf.filename}")
    dest = upstream_dir(wf) / wf.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmpname = tempfile.mkstemp(prefix=f".{wf.filename}.", dir=dest.parent)
    tmp = Path(tmpname)
    try:
        req = urllib.request.Request(wf.url, headers={"User-Agent": "faceblur-bench"})
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 — URLError, socket timeout, HTTP errors
            raise WeightsMissingError(
                f"could not download {wf.name} from {wf.url}: {exc}",
                f"check the network, or download it by hand and place it at {dest}"
                + (f" ({wf.manual})" if wf.manual else ""),
            ) from None
        total = int(resp.headers.get("Content-Length") or 0) or None
        h = hashlib.sha256()
        done = 0
        with os.fdopen(fd, "wb") as f, resp:
            while block := resp.read(1 << 20):
                f.write(block)
                h.update(block)
                done += len(block)
                if progress:
                    progress(done, total)
        if wf.archive_member is not None:
            # the download is a zip pack (insightface model packs); the hash applies to the member
            import zipfile

            member_tmp = tmp.with_name(tmp.name + ".member")
            try:
                with zipfile.ZipFile(tmp) as zf:
                    names = [n for n in zf.namelist()
                             if n == wf.archive_member or n.endswith("/" + wf.archive_member)]
                    if not names:
                        raise WeightsMissingError(
                            f"{wf.url} does not contain {wf.archive_member}",
                            f"download the pack by hand and place {wf.filename} at {dest}",
                        )
                    with zf.open(names[0]) as src, open(member_tmp, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                shutil.move(str(member_tmp), tmp)
            finally:
                if member_tmp.exists():
                    member_tmp.unlink()
            h = hashlib.sha256()
            with open(tmp, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        got = h.hexdigest()
        if not wf.hash_matches(got):
            raise WeightsIntegrityError(
                f"downloaded {wf.name} has sha256 {got[:16]}…, expected {wf.expected_hash()}",
                "the upstream file changed or the download was corrupted; try again",
            )
        shutil.move(str(tmp), dest)
        return dest
    finally:
        if tmp.exists():
            tmp.unlink()


# -- the files the built-in metrics use ------------------------------------------------------------
# sha256: torch-hub files carry a sha256 prefix in their names (checked as a prefix); for the
# others no hash is published upstream and none could be verified here, so ``sha256`` is None.
_GDRIVE = "https://drive.google.com/file/d/1MGSQpN-wsUe1EzADWSa13R7Czf00Xmmn/view?usp=sharing"

register(WeightFile(
    name="vggface16",
    filename="VGGFace16.pth",
    url=_GDRIVE,
    sha256=None,
    cache="faceblur",
    description="VGGFace16 (torchvision vgg16 layout, 2622 classes, {'state_dict': ...}) from "
                "Lu et al. via the MSPL-GAN README; no published sha256",
    used_by=("dvgg", "DFPGnet training (VGGFace prior targets)"),
    manual="download VGGFace16.zip from the MSPL-GAN README (Google Drive: " + _GDRIVE + "), "
           "unzip it and place VGGFace16.pth in ~/.cache/faceblur_bench/weights/ "
           "(or $FACEBLUR_WEIGHTS/)",
    downloadable=False,
))
register(WeightFile(
    name="arcface-resnet18",
    filename="arcface_resnet18.pth",
    url="https://github.com/TencentARC/GFPGAN/releases/download/v0.1.0/arcface_resnet18.pth",
    sha256=None,
    cache="faceblur",
    description="GFPGAN ResNetArcFace-18 (IRBlock [2,2,2,2], no SE, gray input; keys with "
                "'module.' prefix); GFPGAN publishes no sha256",
    used_by=(),
))
register(WeightFile(
    name="mobilefacenet",
    filename="model_mobilefacenet.pth",
    url="https://1drv.ms/u/s!AhMqVPD44cDOhkSMHodSH4rhfb5u",
    sha256=None,
    cache="faceblur",
    description="MobileFaceNet 512-d (TreB1eN/InsightFace_Pytorch) used by the MSPL/DFPG "
                "verification notebook; no published sha256",
    used_by=(),
    manual="download model_mobilefacenet.pth from the TreB1eN/InsightFace_Pytorch README "
           "(OneDrive https://1drv.ms/u/s!AhMqVPD44cDOhkSMHodSH4rhfb5u or BaiduNetDisk "
           "https://pan.baidu.com/s/1hqNNkcAjQOSxUjofboN6qg) and place it in "
           "~/.cache/faceblur_bench/weights/ (or $FACEBLUR_WEIGHTS/)",
    downloadable=False,
))
register(WeightFile(
    name="arcface-r50",
    filename="w600k_r50.onnx",
    url="https://github.com/deepinsight/insightface/releases/download/model-zoo/buffalo_l.zip",
    sha256=None,
    cache="insightface:buffalo_l",
    description="insightface buffalo_l recognition model (IResNet-50, WebFace600K, ONNX); "
                "member of buffalo_l.zip (the URL insightface's own downloader uses; older releases: "
                "tag v0.7); no published sha256",
    used_by=(),
    archive_member="w600k_r50.onnx",
))
register(WeightFile(
    name="lpips-alex-backbone",
    filename="alexnet-owt-7be5be79.pth",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    sha256=None,
    sha256_prefix="7be5be79",
    cache="torch-hub",
    description="torchvision AlexNet ImageNet weights (LPIPS 'alex' backbone)",
    used_by=(),
))
register(WeightFile(
    name="lpips-vgg-backbone",
    filename="vgg16-397923af.pth",
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
    sha256=None,
    sha256_prefix="397923af",
    cache="torch-hub",
    description="torchvision VGG16 ImageNet weights (LPIPS 'vgg' backbone)",
    used_by=(),
))
register(WeightFile(
    name="vgg19",
    filename="vgg19-dcbb9e9d.pth",
    url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    sha256=None,
    sha256_prefix="dcbb9e9d",
    cache="torch-hub",
    description="torchvision VGG19 ImageNet weights (Yun et al. perceptual loss)",
    used_by=("Yun et al. training (VGG-19 perceptual loss)",),
))
register(WeightFile(
    name="fid-inception",
    filename="pt_inception-2015-12-05-6726825d.pth",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth",
    sha256=None,
    sha256_prefix="6726825d",
    cache="torch-hub",
    description="pytorch-fid Inception-v3 (TF 2015-12-05 port) for FID",
    used_by=(),
))
register(WeightFile(
    name="facenet-vggface2",
    filename="20180402-114759-vggface2.pt",
    url="https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
        "20180402-114759-vggface2.pt",
    sha256=None,
    cache="torch-checkpoints",
    description="facenet-pytorch InceptionResnetV1 trained on VGGFace2; no published sha256",
    used_by=(),
))
register(WeightFile(
    name="vgg-face-dag",
    filename="vgg_face_dag.pth",
    url="http://www.robots.ox.ac.uk/~albanie/models/pytorch-mcn/vgg_face_dag.pth",
    sha256=None,
    cache="faceblur",
    description="Oxford VGG-Face (Albanie's pytorch-mcn conversion; mean RGB "
                "[129.186,104.762,93.594], 224x224); no published sha256",
    used_by=(),
))


# -- dlib face recognition: files shipped inside the PyPI package face-recognition-models ----------
# sha256 of the files as face-recognition-models 0.3.0 (PyPI) installs them. Davis King's
# dlib-models README releases the first two into the public domain. The 68-point model (lmd-dlib) was
# trained on the iBUG 300-W data, whose licence excludes commercial use (dlib-models README).
for _name, _file, _sha, _desc in (
    ("dlib-resnet-v1", "dlib_face_recognition_resnet_model_v1.dat",
     "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
     "dlib ResNet face descriptor (27 conv layers, 128-d, 150x150 chips; 99.38 % on LFW)"),
    ("dlib-shape-predictor-5", "shape_predictor_5_face_landmarks.dat",
     "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
     "dlib 5-point landmark predictor (eye corners, nose base) used to align the descriptor's chips"),
    ("dlib-shape-predictor-68", "shape_predictor_68_face_landmarks.dat",
     "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
     "dlib 68-point landmark predictor (iBUG 300-W markup; trained on 300-W, whose licence "
     "excludes commercial use)"),
):
    register(WeightFile(
        name=_name,
        filename=_file,
        url=f"http://dlib.net/files/{_file}.bz2",
        sha256=_sha,
        cache="package:face_recognition_models/models",
        description=f"{_desc}, shipped in the face-recognition-models package",
        manual="installed with the package: `pip install dlib-bin face-recognition-models` "
               "(default dependencies of faceblur-bench)",
        downloadable=False,
    ))

# -- the 98-point landmark model of the field's landmark distance (lmd-fan) ------------------------
# facexlib's ``init_alignment_model('awing_fan')`` downloads this file into the facexlib package's
# ``weights`` folder; GFPGAN, VQFR and PMRF compute LMD with it. facexlib publishes no sha256 and
# none could be verified here (no network), so the file is not hash-checked.
register(WeightFile(
    name="awing-fan",
    filename="alignment_WFLW_4HG.pth",
    url="https://github.com/xinntao/facexlib/releases/download/v0.1.0/alignment_WFLW_4HG.pth",
    sha256=None,
    cache="package:facexlib/weights",
    description="AdaptiveWing FAN, 4 stacked hourglasses, 98 WFLW landmarks ({'state_dict': ...}), "
                "facexlib release v0.1.0, for lmd-fan; no published sha256",
))

# -- files pyiqa downloads for the default no-reference metrics (faceblur_bench.metrics.pyiqa_nr) --
# pyiqa 0.1.16 fetches them from its Hugging Face weight repository into torch.hub.get_dir()/pyiqa;
# no hash is published for them. CLIP's URL carries the file's full sha256 (CLIP checks it too).
_PYIQA_HF = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/"
for _name, _file, _desc in (
    ("pyiqa-niqe-params", "niqe_modelparameters.mat",
     "NIQE pristine model (MATLAB .mat: mu_prisparam 1x36, cov_prisparam 36x36) for pyiqa 'niqe'"),
    ("pyiqa-brisque-svm", "brisque_svm_weights.pth",
     "BRISQUE SVR (sv_coef, sv) tensors for pyiqa 'brisque'"),
    ("pyiqa-musiq-koniq", "musiq_koniq_ckpt-e95806b9.pth", "MUSIQ trained on KonIQ-10k for pyiqa 'musiq'"),
    ("pyiqa-maniqa-koniq", "ckpt_koniq10k.pt",
     ("MANIQA trained on KonIQ-10k for pyiqa 'maniqa' (its timm vit_base_patch8_224 backbone "
      "comes from the Hugging Face Hub: `faceblur-bench weights fetch pyiqa-maniqa`)")),
):
    register(WeightFile(name=_name, filename=_file, url=_PYIQA_HF + _file, sha256=None, cache="pyiqa",
                        description=_desc + "; no published sha256"))
register(WeightFile(
    name="clip-rn50",
    filename="RN50.pt",
    url="https://openaipublic.azureedge.net/clip/models/"
        "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",
    sha256="afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
    cache="clip",
    description="OpenAI CLIP RN50 (TorchScript archive) used by pyiqa 'clipiqa'; sha256 from its URL",
))
