"""The one mapping between the papers' words and the harness's names.

- :data:`PAPERS`: short paper keys used in ``results/published/*.csv`` -> citation.
- :data:`QUANTITIES`: quantity names used in the published CSVs (column ``metric``) -> display
  label, direction, decimals. Reproduced metrics use the same table when their summary lacks a
  label / direction.
- :data:`HARNESS_METRICS`: for a published (quantity, protocol id) the harness metric names that
  compute that quantity under a *compatible* protocol, most faithful first. A published number is
  only put in the same column as a reproduced one through this table.
- :data:`SPLITS`: harness split names with their subsets, and what each paper called them.
"""

from __future__ import annotations

from dataclasses import dataclass

#: rows that are reference points, not restorations (the sharp ground truth, the degraded input
#: itself): shown, never marked best or second — "blurred" trivially wins metrics that compare
#: the output with the input (e.g. identity-consistency-dlib = 0)
REFERENCE_METHODS = ("gt", "blurred")


def is_ranked(method: str | None) -> bool:
    """Whether a row of ``method`` (harness name) competes for the best/second marks."""
    return method not in REFERENCE_METHODS


@dataclass(frozen=True)
class Paper:
    """A seed paper. ``citation`` is what tables print (authors, title, venue where the paper
    prints it); ``seed`` is the internal seed number, never shown to users."""

    key: str
    seed: str
    citation: str
    short: str


PAPERS: dict[str, Paper] = {
    "sappgan": Paper("sappgan", "000",
                     "S. Han, T. B. Lee, Y. S. Heo, \"Semantic-Aware Face Deblurring With "
                     "Pixel-Wise Projection Discriminator\", IEEE Access 11, 2023",
                     "SAPPGAN (Han et al. 2023)"),
    "yun": Paper("yun", "001",
                 "J. U. Yun, B. Jo, I. K. Park, \"Joint Face Super-Resolution and Deblurring "
                 "Using Generative Adversarial Network\", IEEE Access 8, 2020",
                 "Yun et al. 2020"),
    "dfpg": Paper("dfpg", "002",
                  "S. H. Jung, T. B. Lee, Y. S. Heo, \"Deep Feature Prior Guided Face "
                  "Deblurring\"", "DFPGnet (Jung et al.)"),
    "cfmd": Paper("cfmd", "003",
                  "T. B. Lee, S. Han, Y. S. Heo, \"Continuous Facial Motion Deblurring\"",
                  "CFMD-GAN (Lee et al.)"),
    "shen": Paper("shen", "004",
                  "Z. Shen, W.-S. Lai, T. Xu, J. Kautz, M.-H. Yang, \"Exploiting Semantics for "
                  "Face Image Deblurring\", IJCV, 2020", "Shen et al. 2020"),
}


@dataclass(frozen=True)
class Quantity:
    label: str
    higher_is_better: bool | None
    decimals: int
    description: str


QUANTITIES: dict[str, Quantity] = {
    "psnr": Quantity("PSNR", True, 2, "peak signal-to-noise ratio (dB)"),
    "ssim": Quantity("SSIM", True, 4, "structural similarity"),
    "lpips": Quantity("LPIPS", False, 4, "learned perceptual image patch similarity"),
    "d_vgg": Quantity("d_VGG", False, 2, "MSE between VGGFace pool5 features"),
    "d_arc": Quantity("d_ARC", False, 4, "MSE between ArcFace embeddings"),
    "arcface": Quantity("ArcFace", False, 4, "ArcFace embedding distance"),
    "fid": Quantity("FID", False, 2, "Fréchet Inception distance"),
    "kid": Quantity("KID", False, 4, "kernel Inception distance (unbiased MMD²)"),
    "verification_acc": Quantity("Acc", True, 2, "face verification accuracy (%)"),
    "detection_rate": Quantity("Detection", True, 2, "face detection success rate (%)"),
    "top1": Quantity("Top-1", True, 2, "top-1 identification accuracy (%)"),
    "top3": Quantity("Top-3", True, 2, "top-3 identification accuracy (%)"),
    "top5": Quantity("Top-5", True, 2, "top-5 identification accuracy (%)"),
    "runtime_s": Quantity("Time (s)", False, 3, "restoration time per image (s)"),
    "params_m": Quantity("Params (M)", False, 2, "generator parameters (millions)"),
    "fscore": Quantity("F-score", True, 2, "face parsing F-score"),
    "psnr_worst": Quantity("worst PSNR", True, 2, "lowest PSNR over the test set (dB)"),
    "ssim_worst": Quantity("worst SSIM", True, 4, "lowest SSIM over the test set"),
    "rank1_rate": Quantity("Rank-1", True, 2, "rank-1 face recognition rate at a threshold (%)"),
    "n_blurred": Quantity("# blurred", None, 0, "number of blurred images"),
    "n_sharp": Quantity("# sharp", None, 0, "number of sharp images / frames"),
    "n_pairs": Quantity("# pairs", None, 0, "number of (prediction, GT frame) pairs"),
    "n_clear": Quantity("# clear", None, 0, "number of clear face images"),
    "n_kernels": Quantity("# kernels", None, 0, "number of blur kernels"),
}

#: (quantity, published protocol id) -> harness metric names of a compatible protocol.
#: A quantity alone maps through ``(quantity, "*")``.
HARNESS_METRICS: dict[tuple[str, str], tuple[str, ...]] = {
    # (quantity, "*"): the harness's standard protocol(s) of the quantity
    ("psnr", "*"): ("psnr",),
    ("ssim", "*"): ("ssim",),
    ("lpips", "*"): ("lpips-alex", "lpips-vgg", "lpips"),
    ("d_vgg", "*"): ("dvgg",),
    ("d_arc", "*"): ("darc",),
    ("arcface", "*"): ("arcface",),
    ("fid", "*"): ("fid",),
    ("verification_acc", "*"): ("verification-lfw", "verification-paper"),
    ("detection_rate", "*"): ("detection-rate",),
    ("top1", "*"): ("identification-top1",),
    ("top3", "*"): ("identification-top3",),
    ("top5", "*"): ("identification-top5",),
    # protocols the harness reproduces as the papers' code computed them
    ("psnr", "matlab-rgb"): ("psnr",),
    ("ssim", "matlab-rgb-volume"): ("ssim-matlab-rgb",),
    ("d_vgg", "sappgan-dvgg"): ("dvgg",),
    ("d_vgg", "dfpg-dvgg"): ("dvgg",),
    ("d_arc", "sappgan-darc"): ("darc",),
    ("lpips", "lpips-vgg-0255"): ("lpips-vgg-255",),
    ("lpips", "dfpg-lpips"): ("lpips-vgg-255",),
    ("lpips", "cfmd-lpips"): ("lpips-alex-01",),
    ("verification_acc", "mspl-mobilefacenet-kfold"): ("verification-paper",),
    # Yun et al.: the released test notebook's data range = max - min of the prediction
    ("psnr", "yun-psnr"): ("psnr-yun",),
    ("ssim", "yun-ssim"): ("ssim-yun",),
}

#: quantities whose published numbers may share a leaderboard column with the harness's
#: standard protocol even when the paper does not state its implementation (RGB uint8 PSNR is
#: what every paper here means)
LOOSE_OK = frozenset({"psnr"})

#: harness split -> subsets, and the names the papers use for it
SPLITS: dict[str, dict[str, object]] = {
    "demo": {"subsets": (), "paper_names": ()},
    "mspl-center": {"subsets": ("celeba", "celeba-hq", "ffhq"), "paper_names": ("MSPL-Center",)},
    "mspl-random": {"subsets": ("celeba", "celeba-hq", "ffhq"), "paper_names": ("MSPL-Random",)},
    "shen-helen": {"subsets": (), "paper_names": ("Helen (Shen et al. test set)",)},
    "shen-celeba": {"subsets": (), "paper_names": ("CelebA (Shen et al. test set)",)},
    "300vw": {"subsets": (), "paper_names": ("300VW test set (CFMD-GAN)",)},
    "celebahq-sr8": {"subsets": (), "paper_names": ("CelebA-HQ 32x32 -> 256x256 (Yun et al.)",)},
    "lai-real": {"subsets": (), "paper_names": ("Lai et al. real blurred faces",)},
}

SUBSET_LABELS = {"celeba": "CelebA", "celeba-hq": "CelebA-HQ", "ffhq": "FFHQ"}


def quantity_of(metric: str) -> str:
    """Quantity a harness metric name measures (``lpips_sappgan`` -> ``lpips``)."""
    if metric in QUANTITIES:
        return metric
    for (q, _pid), names in HARNESS_METRICS.items():
        if metric in names:
            return q
    return metric


def display(metric: str) -> Quantity:
    """Label / direction / decimals for a metric or quantity name (unknown -> 4 decimals)."""
    q = QUANTITIES.get(metric) or QUANTITIES.get(quantity_of(metric))
    if q is not None:
        return q
    if metric.startswith("psnr"):  # psnr-y and other PSNR variants: dB, two decimals
        return Quantity(metric, True, 2, metric)
    return Quantity(metric, None, 4, metric)


def exact_protocol(quantity: str, protocol_id: str | None) -> bool:
    """True when the harness has a metric computing ``quantity`` as the paper's protocol did."""
    return (quantity, protocol_id or "*") in HARNESS_METRICS and bool(protocol_id)


def harness_metric(quantity: str, protocol_id: str | None = None,
                   available: set[str] | list[str] | None = None, strict: bool = False
                   ) -> str | None:
    """Harness metric name for a published (quantity, protocol id).

    Among the candidates, the first one in ``available`` (e.g. the metrics of the runs being
    tabulated, or the metric registry) wins; with none available, the first candidate.
    ``strict``: None unless the protocol is one the harness reproduces (or the quantity is in
    :data:`LOOSE_OK`).
    """
    if strict and not exact_protocol(quantity, protocol_id) and quantity not in LOOSE_OK:
        return None
    cands = HARNESS_METRICS.get((quantity, protocol_id or "*")) or \
        HARNESS_METRICS.get((quantity, "*")) or (quantity,)
    if available is not None:
        for c in cands:
            if c in available:
                return c
    return cands[0]
