"""Evaluation protocols for splits whose samples carry all sharp frames of a blur window (300VW).

``s2s`` (single-to-single, the default): one restored image per blurred image, scored against
the sample's ground truth (300VW: the window's temporal middle frame); a continuous method
restores its centre moment u = 0.5 (its default).

``s2v`` (single-to-video, CFMD-GAN Table 4): every blurred image with n frames is restored n
times, at u_k = k/(n−1) for k = 0..n−1, and output k is scored against the k-th sharp frame in
the split's frame order — FMR order (seed 003 §4.1) when the authors' list gave it
(``meta["frame_order"] == "fmr-list"``), else temporal order, which the run summary then flags
because the numbers are not comparable with the paper's. :func:`expand_moments` turns each
window into n samples (one row each, so resume, per-image failures and set metrics such as FID
over all frames work unchanged): id ``<id>@k<k>of<n>``, ``sharp`` = frame k, meta ``moment``
(u_k), ``moment_index`` k, ``n_moments`` n, ``frame`` (file stem) and ``window`` (the blurred
image's id). Only methods that declare ``accepts_moment`` are run; others are refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import UsageError
from .base import Sample

PROTOCOLS = ("s2s", "s2v")
PROTOCOL_HELP = {
    "s2s": "single-to-single: one output per blurred image vs. its ground truth (u = 0.5 for continuous methods)",
    "s2v": "single-to-video: n outputs per blurred image at u_k = k/(n-1), output k vs. sharp frame k",
}


def check_protocol_name(protocol: str) -> None:
    """:class:`~faceblur_bench.errors.UnknownNameError` (exit 2, "did you mean") for a
    ``--protocol`` that is not one of :data:`PROTOCOLS`."""
    if protocol not in PROTOCOLS:
        import difflib

        from ..errors import UnknownNameError

        raise UnknownNameError("protocol", protocol, list(PROTOCOLS),
                               difflib.get_close_matches(protocol, PROTOCOLS, n=1, cutoff=0.3))


def check_protocol(protocol: str, method_name: str, accepts_moment: bool) -> None:
    """UsageError for an unknown protocol or a method that cannot run it."""
    check_protocol_name(protocol)
    if protocol == "s2v" and not accepts_moment:
        raise UsageError(
            f"method {method_name!r} restores one image per input and takes no moment: it cannot be "
            "evaluated single-to-video (--protocol s2v restores n moments u_k = k/(n-1) per blurred image)",
            "use --protocol s2s for this method, or a continuous method that declares accepts_moment "
            "(e.g. cfmd-gan); repeating one output n times is never done")


def moment_id(window_id: str, k: int, n: int) -> str:
    return f"{window_id}@k{k}of{n}"


def expand_moments(samples: Sequence[Sample], split_name: str = "split") -> list[Sample]:
    """One sample per (window, k): see the module docstring. Samples without frames are refused."""
    out: list[Sample] = []
    for s in samples:
        n = len(s.frames)
        if n < 2:
            raise UsageError(f"sample {s.id!r} of {split_name} has {n} sharp frame(s): single-to-video "
                             "evaluation needs every frame of the blur window",
                             "use --protocol s2s, or a split whose samples list their frames (300vw)")
        for k, frame in enumerate(s.frames):
            meta = {**s.meta, "moment": k / (n - 1), "moment_index": k, "n_moments": n,
                    "frame": frame.stem, "window": s.id}
            out.append(Sample(id=moment_id(s.id, k, n), blurred=s.blurred, sharp=frame, frames=(), meta=meta))
    return out


def frame_orders(samples: Sequence[Sample]) -> list[str]:
    """The distinct ``meta["frame_order"]`` values of ``samples`` (``"unknown"`` when absent)."""
    return sorted({str(s.meta.get("frame_order", "unknown")) for s in samples})


def protocol_note(protocol: str, orders: Sequence[str]) -> str | None:
    """A line for the run summary when s2v frames are not in FMR order."""
    if protocol == "s2v" and any(o != "fmr-list" for o in orders):
        return ("frames in temporal order, not the authors' FMR order (no test_filelist.txt): output k is "
                "scored against the k-th frame in time, so numbers are not comparable with CFMD-GAN Table 4")
    return None
