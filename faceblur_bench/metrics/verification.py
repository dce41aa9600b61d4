"""Face verification and identification on restored faces (set metrics).

``verification-paper`` — the MSPL/DFPG protocol exactly (``MSPL-GAN:src/test_benchmark/
face_verification.ipynb``): MobileFaceNet (TreB1eN, L2-normalised 512-d) on MTCNN-aligned
112×112 crops, ``(x/255 − 0.5)/0.5``; an image is used only when MTCNN finds exactly one face
(others are skipped and counted); each restored image forms one positive and one negative pair;
distance = squared L2; pairs ordered all-positive then all-negative; thresholds
``arange(0, 4, 1e-4)``; unshuffled 10-fold (``KFold(10, shuffle=False)``): the threshold with the
best accuracy on nine folds is applied to the tenth; value = mean test-fold accuracy. Because of
the ordering every test fold holds a single class — the value is reported as published, with a
warning; use ``verification-lfw`` for a sound number. Known differences from the MSPL code: the
landmarks come from facenet-pytorch's MTCNN (same P/R/O-Net cascade, minimum face 20 px, stage
thresholds 0.6/0.7/0.8, pyramid factor 0.707 as the notebook's TropComplique ``mtcnn-pytorch``,
but a different resampling and NMS implementation, so landmarks can differ slightly); the warp is
insightface's least-squares similarity onto the same 112×112 template (MSPL's ``cp2tform`` also
tries a reflected fit, which does not win on an upright face).

``verification-lfw`` — the standard LFW protocol on ArcFace embeddings (insightface ONNX,
buffalo_l ``w600k_r50`` by default): restored faces aligned with the ground truth's landmarks
(as the ``arcface`` metric, whose per-batch embeddings are reused), partners aligned with their
own; embeddings L2-normalised; squared L2 distance; 10 folds balanced in positives and negatives;
threshold from ``arange(0, 4, 0.01)`` chosen on the nine training folds; value = mean test
accuracy, ``std`` = population std over the folds.

``identification-top{1,3,5}`` (Shen et al. IJCV Table 11): gallery = the split's ground-truth
images, one entry per identity (mean of the unit ArcFace embeddings of its distinct ground-truth
images); probe = each restored image; value = fraction of probes whose identity is among the
``k`` gallery identities with the highest cosine similarity.

Where pairs come from (first that applies):
1. ``Sample.meta["positive"]`` and ``meta["negative"]``: paths of an image of the same and of a
   different person (the MSPL lists ``shen_celeba_{positive,negative}_mod.txt``); relative paths
   are taken relative to the split root;
2. a pairs file named by the split attribute ``verification_pairs`` (lines
   ``<sample id> <image path> <1 same | 0 different>``, ``#`` comments, paths relative to the file);
3. ``Sample.meta["identity"]``: positive partner = a ground-truth image of the same identity
   (another one when the identity has several, else the sample's own), negative partner = the first
   ground-truth image of the next identity in sorted order.
4. only for metrics that say so (``verification-dlib``), on splits with none of the above (demo,
   MSPL): the *fallback* pairs, pair source ``own-gt-fallback`` — positive partner = the sample's
   own ground truth, negative partner = the ground truth of another face (faces = distinct
   ground-truth files, assumed to show different people; one negative per positive, rotating
   deterministically over the other faces). This is not the LFW pair list nor the papers' pairs.
A split with none of these makes verification not applicable (reported with the reason).
Identification needs no pairs: without ``meta["identity"]`` each distinct ground-truth image is
its own identity.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import weights as wts
from ..data.base import Sample
from ..errors import FaceblurError, UsageError
from ..imageio import read_image
from ..nets.align import DETECTOR_PROTOCOL, MTCNNDetector, align_face, main_face, to_hwc_numpy
from ..registry import metrics
from .base import Batch, Metric, MetricContext
from .identity import (
    ARCFACE_DEFAULT,
    ArcFaceONNXEmbedder,
    arcface_embedder,
    arcface_pair_embeddings,
    batch_faces,
    mtcnn_detector,
    reference_faces,
)
from .reference_cache import package_version, reference_cache

PAPER_THRESHOLDS = np.arange(0, 4, 0.0001)
LFW_THRESHOLDS = np.arange(0, 4, 0.01)
N_FOLDS = 10


class NotApplicableError(UsageError):
    """The split lacks what the metric needs (identity metadata, pairs)."""


# -- pure protocol functions ----------------------------------------------------------------------
@dataclass(frozen=True)
class VerificationResult:
    """Mean/std of test-fold accuracies, per-fold accuracies and chosen thresholds."""

    accuracy: float
    std: float
    fold_accuracies: tuple[float, ...]
    thresholds: tuple[float, ...]
    n_pairs: int
    n_positive: int
    warnings: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.accuracy, "std": self.std, "fold_accuracies": list(self.fold_accuracies),
                "thresholds": list(self.thresholds), "n_pairs": self.n_pairs,
                "n_positive": self.n_positive, "warnings": list(self.warnings)}


def accuracy_curve(dist: np.ndarray, issame: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Accuracy of "same iff dist < t" for every threshold t (vectorised by sorting).

    Equal to ``mean((dist < t) == issame)`` evaluated per threshold, comparisons in the common
    dtype of ``dist`` and ``thresholds``.
    """
    dist = np.asarray(dist)
    issame = np.asarray(issame, dtype=bool)
    pos = np.sort(dist[issame])
    neg = np.sort(dist[~issame])
    t = np.asarray(thresholds)
    tp = np.searchsorted(pos, t, side="left")
    tn = neg.size - np.searchsorted(neg, t, side="left")
    return (tp + tn) / float(dist.size)


def kfold_unshuffled(n: int, n_folds: int = N_FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index arrays of scikit-learn's ``KFold(n_folds, shuffle=False)``.

    Contiguous test folds; the first ``n % n_folds`` folds get one extra item.
    """
    if n < n_folds:
        raise ValueError(f"need at least {n_folds} pairs for {n_folds}-fold evaluation, got {n}")
    sizes = np.full(n_folds, n // n_folds, dtype=int)
    sizes[: n % n_folds] += 1
    idx = np.arange(n)
    out, start = [], 0
    for s in sizes:
        test = idx[start:start + s]
        out.append((np.concatenate([idx[:start], idx[start + s:]]), test))
        start += s
    return out


def _best_threshold_folds(dist: np.ndarray, issame: np.ndarray, folds, thresholds: np.ndarray):
    accs, ths = [], []
    for train, test in folds:
        curve = accuracy_curve(dist[train], issame[train], thresholds)
        best = thresholds[int(np.argmax(curve))]  # first maximum, as np.argmax in the references
        ths.append(float(best))
        accs.append(float(np.mean(np.less(dist[test], best) == issame[test])))
    return np.array(accs), np.array(ths)


def verification_accuracy_paper(dist: np.ndarray, issame: np.ndarray,
                                thresholds: np.ndarray | None = None,
                                n_folds: int = N_FOLDS) -> VerificationResult:
    """MSPL/DFPG verification accuracy: unshuffled ``KFold``, best threshold on nine folds.

    dist:   squared L2 distances of the pairs, in the protocol's order (float32 in the original).
    issame: bool per pair. thresholds: default ``np.arange(0, 4, 1e-4)``.
    Returns mean test-fold accuracy (``accuracy``), population ``std`` and the per-fold values;
    ``warnings`` notes single-class test folds (every fold, with the MSPL pair ordering).
    """
    dist = np.asarray(dist)
    issame = np.asarray(issame, dtype=bool)
    if dist.shape != issame.shape or dist.ndim != 1:
        raise ValueError(f"dist {dist.shape} and issame {issame.shape} must be equal-length 1-D arrays")
    thresholds = PAPER_THRESHOLDS if thresholds is None else np.asarray(thresholds)
    folds = kfold_unshuffled(dist.size, n_folds)
    accs, ths = _best_threshold_folds(dist, issame, folds, thresholds)
    single = sum(1 for _, test in folds if np.unique(issame[test]).size < 2)
    notes = []
    if single:
        msg = (f"{single} of {n_folds} test folds hold a single class (unshuffled KFold over pairs "
               f"ordered positive-then-negative, as in the MSPL code): the accuracy is not a sound "
               f"verification score; see verification-lfw")
        notes.append(msg)
        warnings.warn(msg, stacklevel=2)
    return VerificationResult(float(accs.mean()), float(accs.std()), tuple(accs), tuple(ths),
                              int(dist.size), int(issame.sum()), tuple(notes))


def balanced_folds(issame: np.ndarray, n_folds: int = N_FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) splits with positives and negatives each divided evenly over the folds.

    Pairs keep their order inside each class; fold k = k-th chunk of the positives + k-th chunk
    of the negatives (``np.array_split``), so every test fold holds both classes.
    """
    issame = np.asarray(issame, dtype=bool)
    pos, neg = np.flatnonzero(issame), np.flatnonzero(~issame)
    if pos.size < n_folds or neg.size < n_folds:
        raise ValueError(f"need at least {n_folds} positive and {n_folds} negative pairs, "
                         f"got {pos.size} and {neg.size}")
    all_idx = np.arange(issame.size)
    out = []
    for p, q in zip(np.array_split(pos, n_folds), np.array_split(neg, n_folds)):
        test = np.sort(np.concatenate([p, q]))
        out.append((np.setdiff1d(all_idx, test, assume_unique=True), test))
    return out


def lfw_10fold_distances(dist: np.ndarray, issame: np.ndarray, thresholds: np.ndarray | None = None,
                         n_folds: int = N_FOLDS) -> VerificationResult:
    """Standard LFW-style verification accuracy from pair distances (smaller = more alike).

    dist, issame: ``(P,)``; "same" iff ``dist < t``; folds balanced per class; threshold chosen
    on the nine training folds from ``thresholds`` (default ``np.arange(0, 4, 0.01)``); returns
    mean ± std (population) of the ten test-fold accuracies.
    """
    dist = np.asarray(dist, np.float64)
    issame = np.asarray(issame, dtype=bool)
    if dist.shape != issame.shape or dist.ndim != 1:
        raise ValueError(f"dist {dist.shape} and issame {issame.shape} must be equal-length "
                         "1-D arrays")
    thresholds = LFW_THRESHOLDS if thresholds is None else np.asarray(thresholds)
    accs, ths = _best_threshold_folds(dist, issame, balanced_folds(issame, n_folds), thresholds)
    return VerificationResult(float(accs.mean()), float(accs.std()), tuple(accs), tuple(ths),
                              int(issame.size), int(issame.sum()))


def lfw_10fold(emb1: np.ndarray, emb2: np.ndarray, issame: np.ndarray,
               thresholds: np.ndarray | None = None, n_folds: int = N_FOLDS) -> VerificationResult:
    """Standard LFW-style verification accuracy on embeddings.

    emb1, emb2: ``(P, D)`` embeddings of the two sides of P pairs (normalised here to unit
    length); issame: ``(P,)`` bool. Distance = squared L2 (in [0, 4]); then
    :func:`lfw_10fold_distances`.
    """
    e1 = np.asarray(emb1, np.float64)
    e2 = np.asarray(emb2, np.float64)
    issame = np.asarray(issame, dtype=bool)
    if e1.shape != e2.shape or e1.ndim != 2 or e1.shape[0] != issame.size:
        raise ValueError(f"emb1 {e1.shape}, emb2 {e2.shape} and issame {issame.shape} do not match")
    e1 = e1 / np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = e2 / np.linalg.norm(e2, axis=1, keepdims=True)
    return lfw_10fold_distances(((e1 - e2) ** 2).sum(1), issame, thresholds, n_folds)


def topk_identification(probe: np.ndarray, probe_ids: Sequence[Any], gallery: np.ndarray,
                        gallery_ids: Sequence[Any], ks: Sequence[int] = (1, 3, 5)) -> dict[int, float]:
    """Fraction of probes whose identity is among the k most cosine-similar gallery entries.

    probe ``(P, D)``, gallery ``(G, D)`` (one row per identity); ids compared with ``==``.
    Ties in similarity are broken by gallery order.
    """
    p = np.asarray(probe, np.float64)
    g = np.asarray(gallery, np.float64)
    p = p / np.linalg.norm(p, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    sim = p @ g.T
    order = np.argsort(-sim, axis=1, kind="stable")
    gids = np.asarray(list(gallery_ids), dtype=object)
    ranked = gids[order]
    truth = np.asarray(list(probe_ids), dtype=object)[:, None]
    return {k: float(np.mean((ranked[:, :k] == truth).any(axis=1))) for k in ks}


# -- per-image state ------------------------------------------------------------------------------
def pack(res_ok: np.ndarray, res_emb: np.ndarray, ref_ok: np.ndarray, ref_emb: np.ndarray) -> np.ndarray:
    """Per-image state: ``[restored ok, restored emb (D), reference ok, reference emb (D)]``."""
    n = res_emb.shape[0]
    return np.concatenate([np.asarray(res_ok, np.float32).reshape(n, 1), res_emb.astype(np.float32),
                           np.asarray(ref_ok, np.float32).reshape(n, 1), ref_emb.astype(np.float32)], 1)


def pack_gt_aligned(e: dict[str, np.ndarray]) -> np.ndarray:
    """:func:`pack` of a pair-embedding dict ``{"restored", "reference", "face"}`` whose restored
    face was cut with the ground truth's landmarks: the restored side counts where the ground
    truth had a face and the embedding is finite; the reference side where both hold."""
    ok = e["face"] & np.isfinite(e["restored"]).all(1)
    return pack(ok, e["restored"], ok & np.isfinite(e["reference"]).all(1), e["reference"])


def unpack(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`pack`: (restored ok bool, restored emb, reference ok bool, reference emb)."""
    f = np.asarray(feats, np.float32)
    d = (f.shape[1] - 2) // 2
    if f.ndim != 2 or f.shape[1] != 2 * d + 2:
        raise ValueError(f"per-image state has shape {f.shape}, expected (N, 2*D+2)")
    return f[:, 0] > 0.5, f[:, 1:1 + d], f[:, 1 + d] > 0.5, f[:, 2 + d:]


# -- pairs --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    index: int        # position of the restored image in the sample list
    partner: Any      # ("gt", sample index) or ("file", Path)
    same: bool


def _split_root(ctx: MetricContext | None) -> Path | None:
    split = getattr(ctx, "split", None)
    if split is None:
        return None
    try:
        return Path(split.root)
    except FaceblurError:
        return None


def read_pairs_file(path: str | Path) -> list[tuple[str, Path, bool]]:
    """Lines ``<sample id> <image path> <1|0>``; ``#`` comments; paths relative to the file."""
    path = Path(path)
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or parts[2] not in {"0", "1"}:
            raise UsageError(f"{path}:{n}: expected '<sample id> <image path> <1|0>', got {line!r}",
                             "fix the pairs file (1 = same person, 0 = different)")
        p = Path(parts[1])
        out.append((parts[0], p if p.is_absolute() else path.parent / p, parts[2] == "1"))
    return out


def pair_source(samples: Sequence[Sample], ctx: MetricContext | None) -> str | None:
    """Which source of pairs applies: "meta-files", "pairs-file", "identity" or None."""
    if samples and all("positive" in s.meta and "negative" in s.meta for s in samples):
        return "meta-files"
    if getattr(getattr(ctx, "split", None), "verification_pairs", None):
        return "pairs-file"
    if samples and all(s.meta.get("identity") is not None for s in samples) and \
            len({str(s.meta["identity"]) for s in samples}) >= 2:
        return "identity"
    return None


FALLBACK_SOURCE = "own-gt-fallback"


def fallback_pairs(samples: Sequence[Sample], gt_ok: np.ndarray | None = None) -> list[Pair]:
    """Pairs for a split without identity metadata (module docstring, source 4).

    Faces = distinct ground-truth files whose embedding is usable (``gt_ok``), sorted by path.
    Each sample of face ``k`` gets a positive pair with its own ground truth and a negative pair
    with face ``others[j mod (F-1)]``, where ``others`` lists the faces after ``k`` then before
    it and ``j`` counts earlier samples of face ``k`` — one negative per positive, spread over the
    other faces, fixed by file names and sample order. Empty when fewer than two faces qualify.
    """
    ok = np.ones(len(samples), bool) if gt_ok is None else np.asarray(gt_ok, bool)
    first: dict[str, int] = {}
    for i, s in enumerate(samples):
        if ok[i] and s.sharp is not None:
            first.setdefault(str(s.sharp), i)
    faces = sorted(first)
    if len(faces) < 2:
        return []
    rank = {f: k for k, f in enumerate(faces)}
    seen: dict[str, int] = {}
    pos: list[Pair] = []
    neg: list[Pair] = []
    for i, s in enumerate(samples):
        f = str(s.sharp) if s.sharp is not None else None
        if f not in rank or not ok[i]:
            continue
        k, j = rank[f], seen.get(f, 0)
        seen[f] = j + 1
        others = faces[k + 1:] + faces[:k]
        pos.append(Pair(i, ("gt", i), True))
        neg.append(Pair(i, ("gt", first[others[j % len(others)]]), False))
    return pos + neg


def build_pairs(samples: Sequence[Sample], ctx: MetricContext | None,
                gt_ok: np.ndarray | None = None, fallback: bool = False) -> tuple[list[Pair], str]:
    """Pairs for ``samples`` (see the module docstring), positives first then negatives.

    gt_ok: per sample, whether its ground truth has a usable embedding (identity pairs only pick
    partners with one). fallback: use :func:`fallback_pairs` (source ``own-gt-fallback``) when
    the split has no identity metadata.
    """
    source = pair_source(samples, ctx)
    if source is None and fallback:
        pairs = fallback_pairs(samples, gt_ok)
        if pairs:
            return pairs, FALLBACK_SOURCE
        raise NotApplicableError(
            "no identity metadata and fewer than two ground-truth faces for the fallback pairs",
            "use a split with at least two different ground-truth faces, or with identity labels")
    if source is None:
        raise NotApplicableError(
            "no identity metadata: samples have neither meta['identity'] (>= 2 identities) nor "
            "meta['positive']/['negative'] and the split names no verification_pairs file",
            "use a split with identity labels (e.g. the Shen CelebA test set with its identity list)",
        )
    pos: list[Pair] = []
    neg: list[Pair] = []
    if source == "meta-files":
        root = _split_root(ctx)
        for i, s in enumerate(samples):
            for key, lst, same in (("positive", pos, True), ("negative", neg, False)):
                p = Path(str(s.meta[key]))
                if not p.is_absolute():
                    p = (root or (s.sharp.parent if s.sharp else Path("."))) / p
                lst.append(Pair(i, ("file", p), same))
    elif source == "pairs-file":
        index = {s.id: i for i, s in enumerate(samples)}
        for sid, p, same in read_pairs_file(ctx.split.verification_pairs):  # type: ignore[union-attr]
            if sid in index:
                (pos if same else neg).append(Pair(index[sid], ("file", p), same))
    else:
        ok = np.ones(len(samples), bool) if gt_ok is None else np.asarray(gt_ok, bool)
        # one gallery entry per distinct ground-truth file
        first_of_file: dict[str, int] = {}
        for i, s in enumerate(samples):
            if ok[i] and s.sharp is not None:
                first_of_file.setdefault(str(s.sharp), i)
        by_id: dict[str, list[int]] = {}
        for f, i in sorted(first_of_file.items()):
            by_id.setdefault(str(samples[i].meta["identity"]), []).append(i)
        ids = sorted(by_id)
        for i, s in enumerate(samples):
            ident = str(s.meta["identity"])
            same_ids = by_id.get(ident, [])
            others = [j for j in same_ids if str(samples[j].sharp) != str(s.sharp)]
            partner = others[0] if others else (first_of_file.get(str(s.sharp)) if s.sharp else None)
            if partner is not None:
                pos.append(Pair(i, ("gt", partner), True))
            if ids:
                k = (ids.index(ident) + 1) if ident in by_id else 0
                for step in range(len(ids)):
                    cand = ids[(k + step) % len(ids)]
                    if cand != ident:
                        neg.append(Pair(i, ("gt", by_id[cand][0]), False))
                        break
    return pos + neg, source


# -- metric base ----------------------------------------------------------------------------------
class _PairedEmbeddingSetMetric(Metric):
    """Shared machinery: per-image state = packed embeddings; partners embedded in aggregate."""

    kind = "set"
    needs_reference = True
    #: use the own-ground-truth fallback pairs on splits without identity metadata
    pair_fallback: bool = False

    def _check_split(self, ctx: MetricContext) -> None:
        split = getattr(ctx, "split", None)
        if split is None:
            return
        try:
            samples = split.samples()
        except FaceblurError:
            return  # the engine reports missing data itself
        if pair_source(samples, ctx) is None:
            build_pairs(samples, ctx, fallback=self.pair_fallback)  # raises NotApplicableError

    # subclasses define ``embed_file(path) -> embedding | None`` (aligned with its own landmarks),
    # or ``embed_face(image, face)`` to embed the largest MTCNN face (:meth:`embed_main_face`)

    def lfw_aggregate(self, features: np.ndarray, samples: Sequence[Sample], ctx: MetricContext,
                      accuracy: Any) -> dict[str, Any]:
        """The set value of an LFW-style metric: ``accuracy(e1, e2, issame)`` (a fold result
        with ``as_dict()``) over the usable pairs, with the pair counts beside it; a reason
        instead of a value when too few pairs are usable or the split has none."""
        na, got = self._usable_pairs(features, samples, ctx)
        if na is not None:
            return na
        r_ok, e1, e2, issame, source, unusable = got
        try:
            res = accuracy(e1, e2, issame)
        except ValueError as exc:
            return {"value": None, "reason": str(exc)}
        out = res.as_dict()
        out.update(count=int(r_ok.sum()), pair_source=source, unscored_no_face=int((~r_ok).sum()),
                   partners_unusable=int(unusable))
        return out

    def embed_main_face(self, path: Path) -> np.ndarray | None:
        """Embedding of a partner image's largest MTCNN face, cut with its own landmarks by
        ``self.embed_face(image, face)``; None when the image has no face."""
        img = read_image(path)
        face = main_face(self.detector.detect(img)[0])
        return None if face is None else self.embed_face(img, face)

    def _partner_embeddings(self, pairs: list[Pair], ref_ok: np.ndarray, ref_emb: np.ndarray):
        cache: dict[Path, np.ndarray | None] = {}
        out, missing = [], 0
        for p in pairs:
            kind, what = p.partner
            if kind == "gt":
                e = ref_emb[what] if ref_ok[what] else None
            else:
                if what not in cache:
                    if not Path(what).is_file():
                        raise UsageError(f"verification partner image not found: {what}",
                                         "check meta['positive']/['negative'] or the pairs file paths")
                    cache[what] = self.embed_file(Path(what))
                e = cache[what]
            if e is None:
                missing += 1
            out.append(e)
        return out, missing

    def _usable_pairs(self, features: np.ndarray, samples: Sequence[Sample], ctx: MetricContext):
        """``(result, None)`` when not applicable, else ``(None, (r_ok, e1, e2, issame, source, unusable))``:
        pairs whose restored image has a face (MSPL: images without exactly one face are skipped)
        and whose partner has an embedding, as stacked arrays."""
        r_ok, r_emb, g_ok, g_emb = unpack(features)
        try:
            pairs, source = build_pairs(samples, ctx, g_ok, fallback=self.pair_fallback)
        except NotApplicableError as exc:
            return {"value": None, "reason": exc.message}, None
        pairs = [p for p in pairs if r_ok[p.index]]
        partners, unusable = self._partner_embeddings(pairs, g_ok, g_emb)
        keep = [k for k, e in enumerate(partners) if e is not None]
        dim = r_emb.shape[1]
        e1 = np.stack([r_emb[pairs[k].index] for k in keep]) if keep else np.empty((0, dim), r_emb.dtype)
        e2 = np.stack([partners[k] for k in keep]) if keep else np.empty((0, dim), r_emb.dtype)
        issame = np.array([pairs[k].same for k in keep], dtype=bool)
        return None, (r_ok, e1, e2, issame, source, unusable)


# -- MSPL / DFPG paper protocol ----------------------------------------------------------------------
@metrics.register("verification-paper")
class VerificationPaper(_PairedEmbeddingSetMetric):
    label = "Verif. acc (MSPL)"
    family = "paper"
    higher_is_better = True
    weights = ("mobilefacenet",)
    protocol = ("MobileFaceNet (TreB1eN) on 112x112 faces aligned with their own 5 landmarks (" +
                DETECTOR_PROTOCOL + "; images without exactly one face skipped); squared L2; one "
                "positive + one negative pair per image, ordered positives first; thresholds "
                "arange(0,4,1e-4); unshuffled 10-fold, mean test accuracy (MSPL code; its folds are "
                "single-class)")

    def setup(self, ctx: MetricContext) -> None:
        from ..nets.mobilefacenet import load_mobilefacenet

        path = wts.resolve("mobilefacenet", ctx.weights_overrides)
        self.path = path
        self.device = ctx.device
        self.ctx = ctx
        self.net = ctx.shared(("mobilefacenet", str(path), str(ctx.device)),
                              lambda: load_mobilefacenet(path, ctx.device))
        self.detector = mtcnn_detector(ctx)
        self._check_split(ctx)

    def _embed_crops(self, crops: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255.0).sub(0.5).div(0.5)
        with torch.no_grad():
            return self.net(x.to(self.device)).float().cpu().numpy()

    def _embed_single_face(self, images_hwc: np.ndarray, faces) -> tuple[np.ndarray, np.ndarray]:
        ok = np.array([len(f) == 1 for f in faces], dtype=bool)
        emb = np.full((len(faces), 512), np.nan, np.float32)
        idx = np.flatnonzero(ok)
        if idx.size:
            crops = np.stack([align_face(images_hwc[i], faces[i][0].landmarks) for i in idx])
            emb[idx] = self._embed_crops(crops)
        return ok, emb

    def embeddings(self, batch: Batch, which: str) -> tuple[np.ndarray, np.ndarray]:
        """(single-face flag (N,), MobileFaceNet embedding (N, 512)) of ``batch.<which>``, memoised
        (those of the ground truth once per file, through the reference cache)."""
        def one_gt(y: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            faces = [reference_faces(batch, i, self.ctx, self.detector)]
            ok, emb = self._embed_single_face(to_hwc_numpy(y), faces)
            return torch.from_numpy(ok), torch.from_numpy(emb)

        def run():
            if which == "reference":
                refs = reference_cache(self.ctx)
                ns = refs.namespace({"what": "mobilefacenet-own-single-face", "detector": DETECTOR_PROTOCOL,
                                     "facenet-pytorch": package_version("facenet-pytorch")}, [self.path])
                per_gt = refs.per_reference_at(ns, batch, one_gt)
                return (np.concatenate([ok.numpy() for ok, _ in per_gt]),
                        np.concatenate([e.numpy() for _, e in per_gt]))
            faces = batch_faces(batch, which, self.detector)
            return self._embed_single_face(to_hwc_numpy(getattr(batch, which)), faces)

        return batch.memo(("mobilefacenet", str(self.path), which, "own-single-face"), run)

    def features(self, batch: Batch) -> np.ndarray:
        r_ok, r_emb = self.embeddings(batch, "restored")
        if batch.reference is not None:
            g_ok, g_emb = self.embeddings(batch, "reference")
        else:
            g_ok, g_emb = np.zeros(len(batch), bool), np.full_like(r_emb, np.nan)
        return pack(r_ok, r_emb, g_ok, g_emb)

    def embed_file(self, path: Path) -> np.ndarray | None:
        img = read_image(path)
        faces = self.detector.detect(img)
        ok, emb = self._embed_single_face(img[None], faces)
        return emb[0] if ok[0] else None

    def aggregate(self, features: np.ndarray, samples: Sequence[Sample],
                  ctx: MetricContext) -> dict[str, Any]:
        if not hasattr(self, "net"):
            self.setup(ctx)
        na, got = self._usable_pairs(features, samples, ctx)
        if na is not None:
            return na
        r_ok, e1, e2, issame, source, unusable = got
        if len(issame) < N_FOLDS:
            return {"value": None, "reason": f"only {len(issame)} usable pairs (need >= {N_FOLDS})"}
        dist = np.sum(np.square(np.subtract(e1.astype(np.float32), e2.astype(np.float32))), 1)  # float32, as the notebook
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = verification_accuracy_paper(dist, issame)
        out = res.as_dict()
        out.update(count=int(r_ok.sum()), pair_source=source,
                   skipped_not_one_face=int((~r_ok).sum()), partners_unusable=int(unusable))
        return out


# -- standard LFW protocol on ArcFace ---------------------------------------------------------------
class _ArcFaceSetMetric(_PairedEmbeddingSetMetric):
    weights = (ARCFACE_DEFAULT,)

    def setup(self, ctx: MetricContext) -> None:
        self.ctx = ctx
        self.embedder: ArcFaceONNXEmbedder = arcface_embedder(ctx, ARCFACE_DEFAULT)
        self.detector: MTCNNDetector = mtcnn_detector(ctx)

    def features(self, batch: Batch) -> np.ndarray:
        return pack_gt_aligned(arcface_pair_embeddings(batch, self.ctx, self.embedder, self.detector))

    def embed_face(self, img: np.ndarray, face: Any) -> np.ndarray:
        return self.embedder.embed(align_face(img, face.landmarks)[None])[0]

    embed_file = _PairedEmbeddingSetMetric.embed_main_face


@metrics.register("verification-lfw")
class VerificationLFW(_ArcFaceSetMetric):
    label = "Verif. acc (LFW)"
    family = "standard"
    higher_is_better = True
    protocol = ("ArcFace ONNX (buffalo_l w600k_r50) unit embeddings, restored face warped with the "
                "ground truth's landmarks, partners with their own; squared L2; 10 folds balanced in "
                "same/different pairs, threshold (arange(0,4,0.01)) chosen on nine; mean +- std of "
                "test-fold accuracy")

    def setup(self, ctx: MetricContext) -> None:
        super().setup(ctx)
        self._check_split(ctx)

    def aggregate(self, features: np.ndarray, samples: Sequence[Sample],
                  ctx: MetricContext) -> dict[str, Any]:
        if not hasattr(self, "embedder"):
            self.setup(ctx)
        return self.lfw_aggregate(features, samples, ctx, lfw_10fold)


# -- identification -------------------------------------------------------------------------------
class _Identification(_ArcFaceSetMetric):
    family = "standard"
    higher_is_better = True
    k: int = 1

    def aggregate(self, features: np.ndarray, samples: Sequence[Sample],
                  ctx: MetricContext) -> dict[str, Any]:
        r_ok, r_emb, g_ok, g_emb = unpack(features)
        has_ids = bool(samples) and all(s.meta.get("identity") is not None for s in samples)

        def ident(s: Sample) -> str:
            return str(s.meta["identity"]) if has_ids else str(s.sharp)

        seen: dict[str, int] = {}
        for i, s in enumerate(samples):
            if g_ok[i] and s.sharp is not None:
                seen.setdefault(str(s.sharp), i)
        groups: dict[str, list[np.ndarray]] = {}
        for f, i in sorted(seen.items()):
            e = g_emb[i].astype(np.float64)
            groups.setdefault(ident(samples[i]), []).append(e / np.linalg.norm(e))
        gallery_ids = sorted(groups)
        if len(gallery_ids) < self.k:
            return {"value": None, "reason": f"gallery has {len(gallery_ids)} identities (< {self.k})"}
        gallery = np.stack([np.mean(groups[g], 0) for g in gallery_ids])
        probes = [i for i, s in enumerate(samples) if r_ok[i] and ident(s) in groups]
        if not probes:
            return {"value": None, "reason": "no probe with a detectable face and a gallery identity"}
        acc = topk_identification(r_emb[probes], [ident(samples[i]) for i in probes], gallery,
                                  gallery_ids, ks=(1, 3, 5))
        return {"value": acc[self.k], "count": len(probes), "top1": acc[1], "top3": acc[3],
                "top5": acc[5], "gallery_identities": len(gallery_ids),
                "identity_source": "meta['identity']" if has_ids else "ground-truth file",
                "unscored_no_face": int(len(samples) - len(probes))}


def _ident_protocol(k: int) -> str:
    return (f"top-{k} identification: ArcFace ONNX (buffalo_l w600k_r50) cosine between the restored "
            "face (warped with the ground truth's landmarks) and a gallery of one mean unit embedding "
            "per identity from the split's ground-truth images (identity = meta['identity'], else the "
            "ground-truth file); fraction of probes whose identity ranks in the top " + str(k))


@metrics.register("identification-top1")
class IdentificationTop1(_Identification):
    label = "Top-1 ID"
    k = 1
    protocol = _ident_protocol(1)


@metrics.register("identification-top3")
class IdentificationTop3(_Identification):
    label = "Top-3 ID"
    k = 3
    protocol = _ident_protocol(3)


@metrics.register("identification-top5")
class IdentificationTop5(_Identification):
    label = "Top-5 ID"
    k = 5
    protocol = _ident_protocol(5)
