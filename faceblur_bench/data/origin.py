"""Where a split's files come from: the official release, ``make-split``, or the user's own data.

A run records this as ``summary["data_origin"]`` (with the data root) so that tables and the
leaderboard never show a run on custom or synthesised data as a number on an official test set.

``kind`` is one of

- ``"official"``: the layout is the release's and every count matches the release exactly
  (``expected_counts()`` of the split class, e.g. MSPL's 80 sharp x 80 blurred per subset),
  nothing is missing, and no folder of the split holds a ``make_split.json``. (The harness knows
  no release file hashes to compare; where a split class states them as ``release_hashes``,
  ``{relative path: sha256}``, they must match too.)
- ``"synthesised"``: written by ``faceblur-bench make-split`` (a ``make_split.json`` beside the
  images of the split, or of one of its subsets, marked ``"synthesised": true``).
- ``"custom"``: anything else in the layout of an official split — counts differ from the
  release, files are missing, or the split has no release to compare with (``folder:DIR``,
  ``score``'s folder pairs).
- ``"builtin"``: the demo split the harness builds from bundled photos (no paper reports on it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .base import Sample, Split
from .layout import MADE_MANIFEST

OFFICIAL = "official"
SYNTHESISED = "synthesised"
CUSTOM = "custom"
BUILTIN = "builtin"


def _made_manifests(samples: list[Sample]) -> list[Path]:
    """``make_split.json`` files beside the sample folders (a folder or its parent, as written)."""
    dirs = {p.parent for s in samples for p in (s.blurred, s.sharp) if p is not None}
    found = {d / MADE_MANIFEST for d in dirs} | {d.parent / MADE_MANIFEST for d in dirs}
    return sorted(p for p in found if p.is_file())


def split_origin(split: Split, samples: list[Sample]) -> dict[str, Any]:
    """``{"kind", "reason", "data_root"}`` (plus ``"dropped"``: photos of a ``folder:`` split
    left out because no face passed detection) for ``split`` with all its ``samples`` (not a
    ``--limit`` prefix: a limited run is on the official data, and says so itself)."""
    out: dict[str, Any] = {"data_root": str(split.data_root)}
    if split.name == "demo":
        return {**out, "kind": BUILTIN, "reason": "demo split built by faceblur-bench from bundled photos"}
    made = _made_manifests(samples)
    if made:
        seeds = set()
        for p in made:
            try:
                seeds.add(json.loads(p.read_text()).get("seed"))
            except (OSError, ValueError, AttributeError):
                pass
        seed = f", seed {min(seeds, key=str)}" if len(seeds) == 1 else ""
        return {**out, "kind": SYNTHESISED,
                "reason": f"synthesised by faceblur-bench make-split{seed} ({made[0].name} in {made[0].parent})"}
    dropped_fn = getattr(split, "photos_without_face", None)
    if callable(dropped_fn):  # a photo folder: what was left out is part of what the data is
        out["dropped"] = dropped_fn()
    exp_fn = getattr(split, "expected_counts", None)
    if not callable(exp_fn):
        return {**out, "kind": CUSTOM, "reason": f"{split.full_name} has no released test set to compare with"}
    from .manifest import count_files

    expected = exp_fn()
    counts = count_files(split, samples)
    diffs = [(f"subset of the release: {counts[k]:,} of {v:,} {k}"
              if isinstance(counts.get(k), int) and counts[k] < v else
              f"{k}: {counts.get(k)} found, the release has {v:,}")
             for k, v in expected.items() if v and counts.get(k) != v]
    if split.partial:
        diffs.append("files of the release are missing (--allow-partial)")
    hashes = getattr(split, "release_hashes", None)
    if not diffs and hashes:
        from ..files import sha256_file

        bad = [rel for rel, h in hashes.items()
               if not (split.data_root / rel).is_file() or sha256_file(split.data_root / rel) != h]
        if bad:
            diffs.append(f"{len(bad)} file(s) differ from the release (e.g. {bad[0]})")
    if diffs:
        return {**out, "kind": CUSTOM, "reason": "; ".join(diffs)}
    return {**out, "kind": OFFICIAL, "reason": "layout and counts match the release"}

