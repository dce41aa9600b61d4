"""Speed of the metric suite (harness path) against the reference tools used one by one.

    python benchmarks/bench_metrics.py [--n 200] [--size 128] [--device cpu|cuda] [--json OUT]
    python benchmarks/bench_metrics.py --realistic [--sharp 25] [--kernels 8] [--json OUT]

``--realistic``: the case of a benchmark split — 25 sharp faces x 8 blur kernels = 200 pairs
(each ground truth shared by 8 pairs, as MSPL/Shen share theirs 80 times), restored by 4 methods
(blurred, wiener, richardson-lucy, an untrained DFPGnet), scored per method by the reference tools
and by the harness (the ground-truth side computed once per file and kept across the methods'
runs: :mod:`faceblur_bench.metrics.reference_cache`; FID reference statistics cached likewise).

Scores N restored/ground-truth pairs of face-like 128x128 images (crops of scikit-image's
astronaut and other sample images, degraded by blur + noise) twice, on the same PNG files:

- harness: the registered Metric objects, batched (32), each image decoded once, networks built
  once through ``MetricContext.shared``; set metrics via ``features`` + ``aggregate`` (the FID
  reference features computed cold, into a fresh cache folder);
- reference tools, used as their documentation shows: scikit-image ``peak_signal_noise_ratio`` /
  ``structural_similarity`` in a loop, ``lpips.LPIPS`` one pair at a time (AlexNet, VGG, and VGG
  on 0..255 for the SAPPGAN protocol), ``pytorch_fid.fid_score.calculate_fid_given_paths`` on the
  two folders.

Weights: random-valued files with the upstream names and keys, written to a temporary
TORCH_HOME. TIMING ONLY — RANDOM WEIGHTS: no number printed here is a real LPIPS or FID value.
The agreement columns only check that both paths compute the same function.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAME_SET = ("psnr", "ssim", "lpips-alex", "lpips-vgg", "lpips-vgg-255", "fid")
FULL_SUITE = (
    "psnr",
    "ssim",
    "psnr-y",
    "ssim-y",
    "ssim-gray",
    "ssim-matlab-rgb",
    "lpips-alex",
    "lpips-alex-01",
    "lpips-vgg",
    "lpips-vgg-255",
    "fid",
    "fid-clean",
)


def make_fake_weights(torch_home: Path) -> None:
    """Random-valued torchvision AlexNet/VGG16 and pytorch-fid Inception files (upstream names/keys)."""
    import torchvision

    from faceblur_bench.metrics.fid import fid_inception_architecture

    ck = torch_home / "hub" / "checkpoints"
    ck.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(
        torchvision.models.alexnet(weights=None).state_dict(), ck / "alexnet-owt-7be5be79.pth"
    )
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), ck / "vgg16-397923af.pth")
    sd = fid_inception_architecture().state_dict()
    g = torch.Generator().manual_seed(0)
    for k, v in sd.items():  # He-scaled convs so activations stay O(1) through the network
        if k.endswith("conv.weight") or k.startswith("fc."):
            sd[k] = torch.randn(v.shape, generator=g) * (2.0 / v[0].numel()) ** 0.5
        elif k.endswith("running_var") or k.endswith("bn.weight"):
            sd[k] = 0.5 + torch.rand(v.shape, generator=g)
        elif v.dtype == torch.float32:
            sd[k] = 0.1 * torch.randn(v.shape, generator=g)
    torch.save(sd, ck / "pt_inception-2015-12-05-6726825d.pth")


def make_pairs(root: Path, n: int, size: int, seed: int = 0) -> tuple[Path, Path]:
    """N face-like ground truths (random crops/flips of skimage sample images) and degraded copies."""
    from scipy.ndimage import gaussian_filter
    from skimage import data as skdata
    from skimage.transform import resize

    from faceblur_bench.imageio import write_png

    rng = np.random.default_rng(seed)
    sources = [skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket()]
    gt_dir, out_dir = root / "sharp", root / "restored"
    for i in range(n):
        src = sources[i % len(sources)] if i % 2 else sources[0]  # half of them from the face image
        side = int(rng.integers(size, min(src.shape[:2]) + 1))
        y = int(rng.integers(0, src.shape[0] - side + 1))
        x = int(rng.integers(0, src.shape[1] - side + 1))
        crop = src[y : y + side, x : x + side]
        gt = np.clip(np.round(resize(crop, (size, size), anti_aliasing=True) * 255), 0, 255).astype(
            np.uint8
        )
        if rng.random() < 0.5:
            gt = gt[:, ::-1]
        s = rng.uniform(0.5, 2.5)
        out = gaussian_filter(gt.astype(float), (s, s, 0)) + rng.normal(
            0, rng.uniform(1, 6), gt.shape
        )
        write_png(gt_dir / f"{i:05d}.png", gt)
        write_png(out_dir / f"{i:05d}.png", np.clip(np.round(out), 0, 255).astype(np.uint8))
    return out_dir, gt_dir


class _PairFolders:
    """Minimal split over ``sharp/`` (ground truth) and ``restored/`` for the harness run."""

    def __init__(self, root: Path):
        from faceblur_bench.data.base import Sample

        self.root = root
        self.full_name = "bench-pairs"
        self._samples = [
            Sample(id=p.stem, blurred=root / "restored" / p.name, sharp=p, meta={})
            for p in sorted((root / "sharp").glob("*.png"))
        ]

    def samples(self):
        return list(self._samples)


def run_harness(
    root: Path, names: tuple[str, ...], device: str, batch_size: int = 32
) -> tuple[float, dict]:
    """Score the folders with the registered metrics; returns (seconds, {metric: values or aggregate})."""
    from faceblur_bench.imageio import read_image
    from faceblur_bench.metrics.base import Batch, MetricContext
    from faceblur_bench.registry import metrics

    t0 = time.perf_counter()
    split = _PairFolders(root)
    ctx = MetricContext(device, split=split)
    ms = [metrics.get(n)() for n in names]
    spent: dict[str, float] = {m.name: 0.0 for m in ms}
    for m in ms:
        ts = time.perf_counter()
        m.setup(ctx)
        spent[m.name] += time.perf_counter() - ts
    samples = split.samples()
    values: dict[str, list] = {m.name: [] for m in ms}
    for s in range(0, len(samples), batch_size):
        group = samples[s : s + batch_size]
        restored = np.stack([read_image(x.blurred) for x in group]).transpose(0, 3, 1, 2)
        reference = np.stack([read_image(x.sharp) for x in group]).transpose(0, 3, 1, 2)
        batch = Batch(
            samples=group,
            restored=torch.from_numpy(restored).to(ctx.device),
            reference=torch.from_numpy(reference).to(ctx.device),
        )
        for m in ms:
            ts = time.perf_counter()
            values[m.name].append(m.features(batch) if m.kind == "set" else m.compute(batch))
            spent[m.name] += time.perf_counter() - ts
    out: dict = {}
    for m in ms:
        ts = time.perf_counter()
        v = np.concatenate(values[m.name])
        out[m.name] = m.aggregate(v, samples, ctx) if m.kind == "set" else v
        spent[m.name] += time.perf_counter() - ts
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    print(
        "  harness per metric (setup + compute/features + aggregate): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in spent.items())
        + f"; decoding/other {total - sum(spent.values()):.1f} s"
    )
    return total, out


def run_reference(out_dir: Path, gt_dir: Path, device: str) -> tuple[dict[str, float], dict]:
    """The reference tools, each as its README uses it; returns ({tool: seconds}, {metric: values})."""
    import lpips
    from PIL import Image
    from pytorch_fid.fid_score import calculate_fid_given_paths
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    files = sorted(p.name for p in gt_dir.glob("*.png"))
    times: dict[str, float] = {}
    vals: dict[str, list] = {
        "psnr": [],
        "ssim": [],
        "lpips-alex": [],
        "lpips-vgg": [],
        "lpips-vgg-255": [],
    }

    def load(p: Path) -> np.ndarray:
        return np.asarray(Image.open(p).convert("RGB"))

    t = time.perf_counter()
    for f in files:
        a, b = load(out_dir / f), load(gt_dir / f)
        vals["psnr"].append(peak_signal_noise_ratio(b, a, data_range=255))
        vals["ssim"].append(
            structural_similarity(
                b,
                a,
                channel_axis=2,
                data_range=255,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
        )
    times["skimage psnr+ssim loop"] = time.perf_counter() - t

    for net in ("alex", "vgg"):
        t = time.perf_counter()
        model = lpips.LPIPS(net=net, version="0.1", verbose=False).to(device)
        modes = (
            (("pm1", f"lpips-{net}"),)
            if net == "alex"
            else (("pm1", "lpips-vgg"), ("255", "lpips-vgg-255"))
        )
        with torch.no_grad():
            for f in files:
                for mode, key in modes:
                    if mode == "pm1":  # lpips README: im2tensor(load_image(path)) -> [-1, 1]
                        x = lpips.im2tensor(lpips.load_image(str(out_dir / f))).to(device)
                        y = lpips.im2tensor(lpips.load_image(str(gt_dir / f))).to(device)
                    else:  # SAPPGAN evaluation: 0..255 tensors
                        x = (
                            torch.from_numpy(load(out_dir / f).transpose(2, 0, 1).copy())[None]
                            .float()
                            .to(device)
                        )
                        y = (
                            torch.from_numpy(load(gt_dir / f).transpose(2, 0, 1).copy())[None]
                            .float()
                            .to(device)
                        )
                    vals[key].append(model(x, y).item())
        times[f"lpips {net} loop (pair at a time)"] = time.perf_counter() - t

    t = time.perf_counter()
    fid = calculate_fid_given_paths(
        [str(out_dir), str(gt_dir)], batch_size=50, device=device, dims=2048, num_workers=1
    )
    times["pytorch-fid calculate_fid_given_paths"] = time.perf_counter() - t
    out = {k: np.array(v) for k, v in vals.items()}
    out["fid"] = fid
    return times, out


REALISTIC_SAME = ("psnr", "ssim", "lpips-alex", "lpips-vgg", "lpips-vgg-255", "fid", "arcface")
REALISTIC_FULL = FULL_SUITE + ("dvgg", "darc", "arcface")
METHODS = ("blurred", "wiener", "richardson-lucy", "dfpg")


def make_identity_weights(work: Path) -> None:
    """Random VGGFace16 / ResNetArcFace-18 / ArcFace-ONNX files with the upstream names and keys."""
    from faceblur_bench.nets.arcface_resnet import ResNetArcFace18
    from faceblur_bench.nets.iresnet import IResNet, export_onnx

    fb = work / "cache" / "faceblur_bench" / "weights"
    fb.mkdir(parents=True, exist_ok=True)
    from torchvision.models import vgg16

    g = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        keys = vgg16(weights=None, num_classes=2622).state_dict()
    sd = {}
    for k, v in keys.items():  # He-scaled convs; the unused classifier as stride-0 expansions
        shape = tuple(v.shape)
        if k.startswith("classifier"):
            sd[k] = torch.randn(1, generator=g).expand(shape)
        elif k.endswith("weight"):
            sd[k] = torch.randn(shape, generator=g) * (2.0 / (shape[1] * 9)) ** 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * 0.01
    torch.save({"state_dict": sd}, fb / "VGGFace16.pth")
    torch.manual_seed(0)
    net = ResNetArcFace18()
    torch.save({"module." + k: v for k, v in net.state_dict().items()}, fb / "arcface_resnet18.pth")
    os.environ["INSIGHTFACE_HOME"] = str(work / "insightface")
    export_onnx(IResNet(), work / "insightface" / "models" / "buffalo_l" / "w600k_r50.onnx")


def make_realistic(root: Path, n_sharp: int, n_kernels: int, size: int, device: str, seed: int = 0) -> list:
    """``n_sharp`` ground truths x ``n_kernels`` kernels, blurred (sigma 2/255) and restored by
    every method of :data:`METHODS`; returns the samples (restored paths per method in meta)."""
    from scipy.ndimage import gaussian_filter  # noqa: F401  (skimage resize needs scipy)
    from skimage import data as skdata
    from skimage.transform import resize

    from faceblur_bench.data.base import Sample
    from faceblur_bench.data.degrade import blur_image
    from faceblur_bench.data.kernels import KERNEL_SIZES, kernel_bank
    from faceblur_bench.imageio import quantize, to_tensor01, write_png
    from faceblur_bench.registry import methods

    rng = np.random.default_rng(seed)
    face = skdata.astronaut()
    sizes = tuple(KERNEL_SIZES[i % len(KERNEL_SIZES)] for i in range(n_kernels))
    bank = kernel_bank(1 + n_kernels // len(KERNEL_SIZES), tuple(sorted(set(sizes))), seed)
    kernels = [bank[k][i // len(KERNEL_SIZES)] for i, k in enumerate(sizes)]
    samples = []
    for i in range(n_sharp):  # face crops around the astronaut's face, jittered, some flipped
        side = int(rng.integers(150, 200))
        y, x = int(rng.integers(10, 50)), int(rng.integers(120, 160))
        gt = np.clip(np.round(resize(face[y:y + side, x:x + side], (size, size), anti_aliasing=True) * 255),
                     0, 255).astype(np.uint8)
        if i % 2:
            gt = np.ascontiguousarray(gt[:, ::-1])
        write_png(root / "sharp" / f"f{i:03d}.png", gt)
        for j, k in enumerate(kernels):
            sid = f"f{i:03d}_k{j}"
            b = blur_image(gt, k, sigma=2 / 255, noise_seed=i * 100 + j)
            write_png(root / "blurred" / f"{sid}.png", b)
            samples.append(Sample(id=sid, blurred=root / "blurred" / f"{sid}.png",
                                  sharp=root / "sharp" / f"f{i:03d}.png", meta={"kernel": k}))
    for name in METHODS:
        m = methods.get(name)()
        if name == "dfpg":
            m.init_untrained(device, tiny=True)
        else:
            m.load(None, device)
        for s0 in range(0, len(samples), 16):
            group = samples[s0:s0 + 16]
            from faceblur_bench.imageio import read_image

            x = to_tensor01([read_image(s.blurred) for s in group]).to(device)
            with torch.inference_mode():
                out = quantize(m.restore(x, [{"kernel": s.meta["kernel"], "id": s.id} for s in group]).clamp(0, 1))
            for s, o in zip(group, out.cpu()):
                write_png(root / name / f"{s.id}.png", o.permute(1, 2, 0).numpy())
    return [Sample(id=s.id, blurred=s.blurred, sharp=s.sharp, meta={}) for s in samples]


def harness_method(root: Path, method: str, samples: list, names: tuple[str, ...], device: str,
                   refcache: Path, batch_size: int = 32) -> tuple[float, dict]:
    """One method's run as the engine scores it: a fresh context (networks built per run), the
    disk reference cache shared across runs, each file decoded once per sample."""
    from faceblur_bench.imageio import read_image
    from faceblur_bench.metrics.base import Batch, MetricContext
    from faceblur_bench.metrics.reference_cache import SHARED_KEY, ReferenceCache
    from faceblur_bench.registry import metrics

    class _Split:  # what the set metrics ask a split for: its samples (FID's reference set)
        full_name = "bench-realistic"

        def samples(self):
            return list(samples)

    t0 = time.perf_counter()
    ctx = MetricContext(device, split=_Split())
    ctx.shared(SHARED_KEY, lambda: ReferenceCache(disk_root=refcache, split_fingerprint="bench-realistic"))
    ms = [metrics.get(n)() for n in names]
    spent: dict[str, float] = {m.name: 0.0 for m in ms}
    for m in ms:
        ts = time.perf_counter()
        m.setup(ctx)
        spent[m.name] += time.perf_counter() - ts
    values: dict[str, list] = {m.name: [] for m in ms}
    for s0 in range(0, len(samples), batch_size):
        group = samples[s0:s0 + batch_size]
        restored = np.stack([read_image(root / method / f"{x.id}.png") for x in group]).transpose(0, 3, 1, 2)
        reference = np.stack([read_image(x.sharp) for x in group]).transpose(0, 3, 1, 2)
        batch = Batch(group, torch.from_numpy(restored).to(ctx.device), torch.from_numpy(reference).to(ctx.device))
        for m in ms:
            ts = time.perf_counter()
            values[m.name].append(m.features(batch) if m.kind == "set" else m.compute(batch))
            spent[m.name] += time.perf_counter() - ts
    out = {}
    for m in ms:
        ts = time.perf_counter()
        v = np.concatenate(values[m.name])
        out[m.name] = m.aggregate(v, samples, ctx) if m.kind == "set" else v
        spent[m.name] += time.perf_counter() - ts
    total = time.perf_counter() - t0
    print(f"  harness {method} ({len(ms)} metrics): " + ", ".join(f"{k} {v:.1f}" for k, v in spent.items())
          + f"; decoding/other {total - sum(spent.values()):.1f} s")
    return total, out


def reference_method(root: Path, method: str, samples: list, device: str) -> tuple[dict[str, float], dict]:
    """The reference tools on one method's folder, as their documentation uses them."""
    import lpips
    from facenet_pytorch import MTCNN
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX
    from insightface.utils import face_align
    from PIL import Image
    from pytorch_fid.fid_score import calculate_fid_given_paths
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    def load(p: Path) -> np.ndarray:
        return np.asarray(Image.open(p).convert("RGB"))

    times: dict[str, float] = {}
    vals: dict[str, list] = {k: [] for k in ("psnr", "ssim", "lpips-alex", "lpips-vgg", "lpips-vgg-255", "arcface")}
    t = time.perf_counter()
    for s in samples:
        a, b = load(root / method / f"{s.id}.png"), load(s.sharp)
        vals["psnr"].append(peak_signal_noise_ratio(b, a, data_range=255))
        vals["ssim"].append(structural_similarity(b, a, channel_axis=2, data_range=255, gaussian_weights=True,
                                                  sigma=1.5, use_sample_covariance=False))
    times["skimage psnr+ssim loop"] = time.perf_counter() - t
    for net in ("alex", "vgg"):
        t = time.perf_counter()
        model = lpips.LPIPS(net=net, version="0.1", verbose=False).to(device)
        modes = (("pm1", "lpips-alex"),) if net == "alex" else (("pm1", "lpips-vgg"), ("255", "lpips-vgg-255"))
        with torch.no_grad():
            for s in samples:
                for mode, key in modes:
                    if mode == "pm1":
                        x = lpips.im2tensor(lpips.load_image(str(root / method / f"{s.id}.png"))).to(device)
                        y = lpips.im2tensor(lpips.load_image(str(s.sharp))).to(device)
                    else:
                        x = torch.from_numpy(load(root / method / f"{s.id}.png").transpose(2, 0, 1).copy())[None].float()
                        y = torch.from_numpy(load(s.sharp).transpose(2, 0, 1).copy())[None].float()
                    vals[key].append(model(x.to(device), y.to(device)).item())
        times[f"lpips {net} loop"] = time.perf_counter() - t
    t = time.perf_counter()
    # pytorch-fid on two folders: the method's restorations vs the split's (distinct) sharp faces
    fid = calculate_fid_given_paths([str(root / method), str(root / "sharp")], batch_size=50, device=device,
                                    dims=2048, num_workers=1)
    times["pytorch-fid folders"] = time.perf_counter() - t
    t = time.perf_counter()
    det = MTCNN(keep_all=True, thresholds=[0.6, 0.7, 0.8], factor=0.707, min_face_size=20, device=device)
    rec = ArcFaceONNX(model_file=str(Path(os.environ["INSIGHTFACE_HOME"]) / "models" / "buffalo_l" / "w600k_r50.onnx"))
    rec.prepare(-1)
    for s in samples:  # MTCNN on the ground truth, both warped with its landmarks, ArcFace, cosine
        gt, out = load(s.sharp), load(root / method / f"{s.id}.png")
        boxes, _, pts = det.detect(torch.from_numpy(gt.copy())[None], landmarks=True)
        if pts[0] is None:
            vals["arcface"].append(np.nan)
            continue
        areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes[0]]
        lm = np.asarray(pts[0][int(np.argmax(areas))], np.float32)
        e = [rec.get_feat(face_align.norm_crop(im, landmark=lm, image_size=112)[:, :, ::-1].copy()).ravel()
             .astype(np.float64) for im in (out, gt)]
        vals["arcface"].append(1 - e[0] @ e[1] / (np.linalg.norm(e[0]) * np.linalg.norm(e[1])))
    times["MTCNN + ArcFace per pair"] = time.perf_counter() - t
    res = {k: np.array(v) for k, v in vals.items()}
    res["fid"] = fid
    return times, res


def network_floor(root: Path, method: str, samples: list, device: str, batch_size: int = 32) -> dict[str, float]:
    """Seconds of the forward passes no cache can skip: the networks of the same-set metrics on
    one method's restored images only (LPIPS VGG trunk twice — [-1,1] and 0..255 inputs —, LPIPS
    AlexNet trunk, FID Inception, ArcFace on aligned 112x112 crops), batched as the harness runs
    them. ``reference / sum`` is the ceiling on the per-method speed-up on this machine."""
    from faceblur_bench.imageio import read_image
    from faceblur_bench.metrics.base import MetricContext
    from faceblur_bench.metrics.fid import inception_features
    from faceblur_bench.registry import metrics

    ctx = MetricContext(device)
    ms = {n: metrics.get(n)() for n in ("lpips-vgg", "lpips-vgg-255", "lpips-alex", "fid", "arcface")}
    for m in ms.values():
        m.setup(ctx)
    spent = {n: 0.0 for n in ms}
    crops = np.random.default_rng(0).integers(0, 256, (batch_size, 112, 112, 3), dtype=np.uint8)
    with torch.inference_mode():
        for s0 in range(0, len(samples), batch_size):
            group = samples[s0:s0 + batch_size]
            x = torch.from_numpy(np.stack([read_image(root / method / f"{s.id}.png") for s in group])
                                 .transpose(0, 3, 1, 2).copy()).to(ctx.device)
            for name in ("lpips-vgg", "lpips-vgg-255", "lpips-alex"):
                m = ms[name]
                t = time.perf_counter()
                m.model.net.forward(m.model.scaling_layer(m._scale(x)))
                spent[name] += time.perf_counter() - t
            t = time.perf_counter()
            inception_features(ms["fid"].model, x, "legacy")
            spent["fid"] += time.perf_counter() - t
            t = time.perf_counter()
            ms["arcface"].embedder.embed(crops[:len(group)])
            spent["arcface"] += time.perf_counter() - t
    return spent


def realistic(args: argparse.Namespace, work: Path) -> dict:
    make_identity_weights(work)
    from faceblur_bench import weights

    for name in ("vggface16", "arcface-resnet18", "arcface-r50"):
        if name in weights.KNOWN:
            weights.KNOWN[name] = dataclasses.replace(weights.KNOWN[name], sha256=None, sha256_prefix=None)
    t = time.perf_counter()
    samples = make_realistic(work / "split", args.sharp, args.kernels, args.size, args.device)
    print(f"{args.sharp} sharp x {args.kernels} kernels = {len(samples)} pairs, {len(METHODS)} methods "
          f"(restorations written in {time.perf_counter() - t:.0f} s, not timed)")
    report: dict = {"pairs": len(samples), "sharp": args.sharp, "kernels": args.kernels, "methods": list(METHODS),
                    "harness_same_s": {}, "harness_full_s": {}, "reference_s": {}, "agreement": {}}
    for i, method in enumerate(METHODS):
        os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # FID reference stats: cached after run 1
        t_same, h = harness_method(work / "split", method, samples, REALISTIC_SAME, args.device,
                                   work / "refcache-same")
        t_full, _ = harness_method(work / "split", method, samples, REALISTIC_FULL, args.device,
                                   work / "refcache-full")
        times, ref = reference_method(work / "split", method, samples, args.device)
        report["harness_same_s"][method] = t_same
        report["harness_full_s"][method] = t_full
        report["reference_s"][method] = times
        agree = {k: float(np.nanmax(np.abs(np.asarray(h[k]) - ref[k]))) for k in
                 ("psnr", "ssim", "lpips-alex", "lpips-vgg", "lpips-vgg-255", "arcface")}
        agree["fid (relative)"] = abs(h["fid"]["value"] - ref["fid"]) / max(abs(ref["fid"]), 1e-12)
        report["agreement"][method] = agree
        t_ref = sum(times.values())
        print(f"{method}: reference {t_ref:.1f} s ({', '.join(f'{k} {v:.1f}' for k, v in times.items())}); "
              f"harness same set {t_same:.1f} s ({t_ref / t_same:.2f}x), full suite of "
              f"{len(REALISTIC_FULL)} {t_full:.1f} s ({t_ref / t_full:.2f}x)")
        print("  agreement (max abs diff; random weights): " + ", ".join(f"{k} {v:.1e}" for k, v in agree.items()))
        if args.json:  # after every method: a run cut short still leaves its figures
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({**report, "partial": i + 1 < len(METHODS),
                                             "note": "timing only - random weights"}, indent=2, default=float) + "\n")
    ref_total = sum(sum(t.values()) for t in report["reference_s"].values())
    same_total = sum(report["harness_same_s"].values())
    full_total = sum(report["harness_full_s"].values())
    first = METHODS[0]
    report.update({
        "reference_total_s": ref_total, "harness_same_total_s": same_total, "harness_full_total_s": full_total,
        "speedup_same_4_methods": ref_total / same_total, "speedup_full_suite_4_methods": ref_total / full_total,
        "speedup_same_single_method": sum(report["reference_s"][first].values()) / report["harness_same_s"][first],
        "speedup_full_single_method": sum(report["reference_s"][first].values()) / report["harness_full_s"][first],
    })
    floor = network_floor(work / "split", METHODS[-1], samples, args.device)
    floor_s = sum(floor.values())
    ref_mean = ref_total / len(METHODS)
    report.update({"network_floor_s": floor, "network_floor_total_s": floor_s,
                   "speedup_ceiling_per_method": ref_mean / floor_s})
    print(f"network floor ({METHODS[-1]}'s {len(samples)} restored images, forward passes only): "
          + ", ".join(f"{k} {v:.1f}" for k, v in floor.items())
          + f"; {floor_s:.1f} s -> ceiling {ref_mean:.1f} / {floor_s:.1f} = {ref_mean / floor_s:.2f}x per method")
    print(f"4 methods: reference tools {ref_total:.1f} s; harness same set {same_total:.1f} s "
          f"({report['speedup_same_4_methods']:.2f}x); full suite {full_total:.1f} s "
          f"({report['speedup_full_suite_4_methods']:.2f}x); single (first) method: "
          f"{report['speedup_same_single_method']:.2f}x same set, {report['speedup_full_single_method']:.2f}x full")
    return report


def main() -> None:
    import warnings

    warnings.filterwarnings(
        "ignore", category=UserWarning
    )  # torchvision `pretrained=` notes, sqrtm
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="number of image pairs")
    ap.add_argument("--size", type=int, default=128, help="image side in pixels")
    ap.add_argument("--device", default="cpu", help="cpu | cuda")
    ap.add_argument("--json", type=Path, default=None, help="write the timings here as JSON")
    ap.add_argument("--realistic", action="store_true", help="the shared-ground-truth, 4-method case")
    ap.add_argument("--sharp", type=int, default=25, help="--realistic: sharp faces")
    ap.add_argument("--kernels", type=int, default=8, help="--realistic: kernels per face")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_metrics_"))
    os.environ["TORCH_HOME"] = str(work / "torch_home")
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # cold FID reference cache
    print(
        "TIMING ONLY — RANDOM WEIGHTS: random-valued AlexNet/VGG16/Inception files with upstream names in",
        work / "torch_home",
        "; no value below is a real LPIPS/FID.",
    )
    make_fake_weights(work / "torch_home")
    from faceblur_bench import weights

    for name in (
        "lpips-alex-backbone",
        "lpips-vgg-backbone",
        "fid-inception",
    ):  # random files: no hash check
        weights.KNOWN[name] = dataclasses.replace(
            weights.KNOWN[name], sha256=None, sha256_prefix=None
        )
    if args.realistic:
        report = realistic(args, work)
        report.update({"size": args.size, "device": args.device, "threads": torch.get_num_threads(),
                       "cpu": platform.processor() or platform.machine(),
                       "note": "timing only - random weights; agreement = both paths compute the same function"})
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")
        return
    out_dir, gt_dir = make_pairs(work / "pairs", args.n, args.size)
    print(
        f"{args.n} pairs of {args.size}x{args.size} PNGs in {work / 'pairs'}; device {args.device}; "
        f"torch threads {torch.get_num_threads()}; {platform.processor() or platform.machine()}"
    )

    t_same, h_same = run_harness(work / "pairs", SAME_SET, args.device)
    print(f"harness, same metric set {SAME_SET}: {t_same:.1f} s")
    os.environ["XDG_CACHE_HOME"] = str(work / "cache_full")
    t_full, h_full = run_harness(work / "pairs", FULL_SUITE, args.device)
    print(f"harness, full suite ({len(FULL_SUITE)} metrics): {t_full:.1f} s")

    times, ref = run_reference(out_dir, gt_dir, args.device)
    t_ref = sum(times.values())
    for k, v in times.items():
        print(f"  reference {k}: {v:.1f} s")
    print(f"reference tools total: {t_ref:.1f} s")
    print(
        f"speed-up, same metrics: {t_ref / t_same:.2f}x   (full suite of {len(FULL_SUITE)} vs the "
        f"reference tools' {len(SAME_SET)}: {t_ref / t_full:.2f}x)"
    )

    agree = {}
    for k in ("psnr", "ssim", "lpips-alex", "lpips-vgg", "lpips-vgg-255"):
        agree[k] = float(np.max(np.abs(np.asarray(h_same[k]) - ref[k])))
    agree["fid (relative)"] = abs(h_same["fid"]["value"] - ref["fid"]) / max(abs(ref["fid"]), 1e-12)
    print(
        "agreement harness vs reference (max abs diff; random weights): "
        + ", ".join(f"{k} {v:.2e}" for k, v in agree.items())
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "n": args.n,
                    "size": args.size,
                    "device": args.device,
                    "threads": torch.get_num_threads(),
                    "harness_same_s": t_same,
                    "harness_full_s": t_full,
                    "reference_s": times,
                    "reference_total_s": t_ref,
                    "speedup_same": t_ref / t_same,
                    "speedup_full_suite": t_ref / t_full,
                    "agreement": agree,
                    "note": "timing only - random weights",
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
