"""Speed of the metric suite (harness path) against the reference tools used one by one.

    python benchmarks/bench_metrics.py [--n 200] [--size 128] [--device cpu|cuda] [--json OUT]

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
