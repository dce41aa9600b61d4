"""Speed of the SAPPGAN / DFPGnet and Shen et al. models at 128x128: training images/s and inference.

    python benchmarks/bench_models.py [--device cpu|cuda] [--quick] [--only inference|training|yun|shen]

Measures, for the paper-size models (generator 44.66 M parameters, SAPP discriminator ch 64,
CA feature discriminator width 64):

- inference: ``restore()``-equivalent generator forward at batch 1 and 16, fp32 and bf16
  autocast (median of timed repeats after warm-up; CUDA synchronised);
- Yun et al.'s generator at 32x32 -> 256x256 (``--only yun``), batch 1 and 16, fp32 and bf16;
- CFMD-GAN's generator G(b, u) at 256x256 and 128x128 (``--only cfmd``), batch 1 and 16, fp32 and bf16;
- training: one full SAPPGAN (S5) and DFPGnet (B6) step — generator forward, discriminator
  step, generator step with VGGFace features — in images/s at batch 16 (fp32 and bf16 autocast).

Shen et al. (IJCV, :func:`bench_shen`; ``--only shen`` writes ``models_<device>_shen.json``):
the G_c → P → G_f forward at batch 1 / 16 (fp32, bf16), and trainer steps of stage 1 and
stage 4 (the joint eq. 11 step with the D step and VGG-Face features).

Weights are random (format-faithful VGGFace16 file written to a temp dir): speed does not
depend on their values; no quality number is produced here. Results go to
``benchmarks/results/models_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceblur_bench.methods.dfpg.model import DFPGGenerator, GeneratorConfig, count_parameters
from faceblur_bench.methods.dfpg.vggface import VGGFaceFeatures, save_random_vggface16
from faceblur_bench.data.kernels import kernel_bank
from faceblur_bench.data.training import Degrader
from faceblur_bench.methods.training import StepContext
from faceblur_bench.train.config import build_config, trainer_class


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _autocast(dev: torch.device, bf16: bool):
    if not bf16:
        return nullcontext()
    return torch.autocast(dev.type, dtype=torch.bfloat16)


def time_it(fn, dev: torch.device, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(dev)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(dev)
        out.append(time.perf_counter() - t)
    return out


def _inference_case(g: torch.nn.Module, dev: torch.device, bs: int, bf16: bool, quick: bool,
                    size: int = 128, label: str = "inference") -> dict:
    x = torch.rand(bs, 3, size, size, device=dev) * 2 - 1

    @torch.no_grad()
    def run() -> None:
        with _autocast(dev, bf16):
            g(x)

    reps = 3 if quick or dev.type == "cpu" else 20
    med = statistics.median(time_it(run, dev, warmup=1 if dev.type == "cpu" else 5, repeats=reps))
    row = {"batch": bs, "dtype": "bf16-autocast" if bf16 else "fp32", "median_s_per_batch": round(med, 5),
           "ms_per_image": round(1000 * med / bs, 3), "repeats": reps}
    print(f"{label} bs={bs:2d} {row['dtype']:14s} {med * 1000:9.2f} ms/batch {row['ms_per_image']:8.2f} ms/image",
          flush=True)
    return row


def bench_inference(dev: torch.device, quick: bool) -> list[dict]:
    g = DFPGGenerator(GeneratorConfig()).to(dev).eval()
    return [_inference_case(g, dev, bs, bf16, quick) for bs in (1, 16) for bf16 in (False, True)]


def bench_yun(dev: torch.device, quick: bool) -> list[dict]:
    """Yun et al.'s generator (58.3 M) at its 32x32 input -> 256x256 output."""
    from faceblur_bench.methods.yun.networks import YunGenerator

    g = YunGenerator().to(dev).eval()
    return [_inference_case(g, dev, bs, bf16, quick, size=32, label="yun 32->256")
            for bs in (1, 16) for bf16 in (False, True)]


def _training_case(method: str, dev: torch.device, bs: int, quick: bool, loader) -> list[dict]:
    """One full training step of the registered trainer ``method`` (its own train_step)."""
    cfg = build_config(method)
    task = trainer_class(method)(cfg, dev, vgg_loader=loader)
    task.degrader = Degrader(kernel_bank(4, (13,), seed=0), float(cfg["data"]["noise_sigma"]), False, dev)
    task.train_mode(True)
    rows = []
    for bf16 in (False, True):
        batch = {"sharp": torch.rand(bs, 3, 128, 128, device=dev),
                 "labels": torch.randint(0, 19, (bs, 128, 128), device=dev)}
        ctx = StepContext(epoch=0, iteration=0, step=0, epochs=int(cfg["epochs"]), seed=0, rank=0, world=1,
                          device=dev, nets=task.modules, autocast=lambda bf16=bf16: _autocast(dev, bf16))

        def step(batch: dict = batch, ctx: StepContext = ctx) -> None:
            task.train_step(dict(batch), ctx)

        reps = 2 if dev.type == "cpu" else (5 if quick else 15)
        med = statistics.median(time_it(step, dev, warmup=1 if dev.type == "cpu" else 3, repeats=reps))
        rows.append({"method": method, "ablation": cfg["preset"], "batch": bs,
                     "dtype": "bf16-autocast" if bf16 else "fp32", "median_s_per_step": round(med, 4),
                     "images_per_s": round(bs / med, 2), "repeats": reps})
        print(f"train {method:8s} bs={bs} {rows[-1]['dtype']:14s} {med:8.3f} s/step "
              f"{rows[-1]['images_per_s']:8.2f} img/s", flush=True)
    return rows


def bench_training(dev: torch.device, quick: bool, weights_dir: Path) -> list[dict]:
    vgg_path = save_random_vggface16(weights_dir / "VGGFace16.pth")

    def loader(layers, overrides=None, device="cpu"):
        return VGGFaceFeatures(layers).load_vggface16(vgg_path).to(device)

    bs = 2 if (quick and dev.type == "cpu") else 16
    res = []
    for method in ("sappgan", "dfpg"):
        res += _training_case(method, dev, bs, quick, loader)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return res


def bench_shen(dev: torch.device, quick: bool, weights_dir: Path) -> dict:
    """Shen et al. (IJCV, paper widths): ``ShenNet`` forward (G_c, P, G_f) at batch 1 / 16, and
    one step of the ``shen`` trainer in stage 1 (G_c, L_c) and stage 4 (joint, eq. 11 with the
    D step and VGG-Face pool2/pool5) in images/s. Random weights: timing only."""
    from faceblur_bench.methods.shen import data as shen_data
    from faceblur_bench.methods.shen.networks import ShenConfig, ShenNet
    from faceblur_bench.methods.shen.networks import count_parameters as shen_count
    from faceblur_bench.methods.shen.vggface import save_random_dag

    net = ShenNet(ShenConfig()).to(dev).eval()
    out: dict = {"parameters": shen_count(ShenConfig()), "inference": [], "training": []}
    for bs in (1, 16):
        for bf16 in (False, True):
            x = torch.rand(bs, 3, 128, 128, device=dev)

            @torch.no_grad()
            def run(x: torch.Tensor = x, bf16: bool = bf16) -> None:
                with _autocast(dev, bf16):
                    net(x)

            cpu = dev.type == "cpu"  # ~10 s per image on a 2-core CPU: one timed pass there
            reps = 1 if cpu else (5 if quick else 20)
            med = statistics.median(time_it(run, dev, warmup=(1 if bs == 1 else 0) if cpu else 5,
                                            repeats=reps))
            out["inference"].append({"batch": bs, "dtype": "bf16-autocast" if bf16 else "fp32",
                                     "median_s_per_batch": round(med, 5),
                                     "ms_per_image": round(1000 * med / bs, 3), "repeats": reps})
            print(f"inference shen bs={bs:2d} {out['inference'][-1]['dtype']:14s} "
                  f"{1000 * med / bs:9.2f} ms/image", flush=True)
    dag = save_random_dag(weights_dir / "vgg_face_dag.pth")
    cfg = build_config("shen")
    task = trainer_class("shen")(cfg, dev, weights_overrides={"vgg-face-dag": str(dag)})
    task.blurrer = shen_data.Blurrer(kernel_bank(4, (13,), seed=0, kind="random-walk"), 0.01, dev)
    bs = 2 if (quick and dev.type == "cpu") else 16
    batch = {"sharp": torch.rand(bs, 3, 128, 128, device=dev),
             "labels": torch.randint(0, 11, (bs, 128, 128), device=dev)}
    for stage, step in ((1, 0), (4, sum(cfg["schedule"]["iterations"]))):
        for bf16 in (False, True):
            ctx = StepContext(epoch=0, iteration=0, step=step, epochs=1, seed=0, rank=0, world=1,
                              device=dev, nets=task.modules,
                              autocast=lambda bf16=bf16: _autocast(dev, bf16))
            reps = 1 if dev.type == "cpu" else (5 if quick else 15)
            med = statistics.median(time_it(lambda ctx=ctx: task.train_step(dict(batch), ctx), dev,
                                            warmup=1 if dev.type == "cpu" else 3, repeats=reps))
            out["training"].append({"method": "shen", "stage": stage, "batch": bs,
                                    "dtype": "bf16-autocast" if bf16 else "fp32",
                                    "median_s_per_step": round(med, 4),
                                    "images_per_s": round(bs / med, 2), "repeats": reps})
            print(f"train shen stage {stage} bs={bs} {out['training'][-1]['dtype']:14s} "
                  f"{med:8.3f} s/step {bs / med:8.2f} img/s", flush=True)
    return out


def bench_cfmd(dev: torch.device, quick: bool) -> list[dict]:
    """CFMD-GAN generator G(b, u) (released architecture, 9.25 M) at 256² and 128², u = 0.5."""
    from faceblur_bench.methods.cfmd.networks import CFMDGenerator

    g = CFMDGenerator().to(dev).eval()
    rows = []
    for size in (256, 128):
        for bs in (1, 16):
            for bf16 in (False, True):
                x = torch.rand(bs, 3, size, size, device=dev)

                @torch.no_grad()
                def run(x: torch.Tensor = x, bf16: bool = bf16) -> None:
                    with _autocast(dev, bf16):
                        g(x, 0.5)

                reps = 1 if dev.type == "cpu" else (5 if quick else 20)
                med = statistics.median(time_it(run, dev, warmup=1 if dev.type == "cpu" else 5, repeats=reps))
                rows.append({"size": size, "batch": bs, "dtype": "bf16-autocast" if bf16 else "fp32",
                             "median_s_per_batch": round(med, 5), "ms_per_image": round(1000 * med / bs, 3),
                             "repeats": reps})
                print(f"cfmd-gan {size}² bs={bs:2d} {rows[-1]['dtype']:14s} {med * 1000:9.2f} ms/batch "
                      f"{rows[-1]['ms_per_image']:8.2f} ms/image", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    ap.add_argument("--quick", action="store_true", help="fewer repeats (and batch 2 for CPU training)")
    ap.add_argument("--only", choices=("inference", "training", "yun", "shen", "cfmd"), default=None,
                    help="run one part only (yun / shen / cfmd: that model only)")
    ap.add_argument("--out", default=None, help="JSON output path (default benchmarks/results/models_<device>.json)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    info = {"device": dev.type, "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "quick": args.quick,
            "generator_parameters": count_parameters(GeneratorConfig()), "image_size": 128}
    print(json.dumps(info), flush=True)
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"models_{dev.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = dict(info)

    def save() -> None:  # after every part, so an interrupted run keeps what it measured
        out.write_text(json.dumps(result, indent=2) + "\n")

    if args.only == "shen":
        out = out.with_name(out.stem + "_shen.json") if not args.out else out
        with tempfile.TemporaryDirectory() as tmp:
            result["shen"] = bench_shen(dev, args.quick, Path(tmp))
        save()
        print(f"wrote {out}")
        return
    if args.only in (None, "inference"):
        result["inference"] = bench_inference(dev, args.quick)
        save()
    if args.only in (None, "yun"):
        result["yun_inference"] = bench_yun(dev, args.quick)
        save()
    if args.only in (None, "training"):
        with tempfile.TemporaryDirectory() as tmp:
            result["training"] = bench_training(dev, args.quick, Path(tmp))
            save()
            result["shen"] = bench_shen(dev, args.quick, Path(tmp))
        save()
    if args.only in (None, "cfmd"):
        result["cfmd_inference"] = bench_cfmd(dev, args.quick)
        save()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
