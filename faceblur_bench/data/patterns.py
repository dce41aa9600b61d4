"""File-name patterns of restored outputs: the one validator of ``--option pattern=`` (method
``folder``) and ``score --pattern``, and the values a sample gives each placeholder.

A pattern is a :meth:`str.format` template whose replacement fields are *plain placeholder
names*, optionally with a format spec (``{k:02d}``, ``{u:.2f}``). It is checked once, at the
door, with :class:`string.Formatter` ``.parse`` (never ``eval``): an unknown name exits 2 with
the valid ones and "did you mean"; attribute or index access (``{id.__class__}``, ``{id[0]}``),
positional fields (``{}``, ``{0}``), conversions (``{id!r}``), nested fields inside a format
spec and a pattern without any placeholder are refused; a format spec that does not fit the
placeholder's type (``{stem:d}``) is refused by filling the pattern in with typed sample values.

Placeholders (:data:`PLACEHOLDERS`), filled from a sample by :func:`sample_values`:

``{id}``      the sample id (single-to-video: the blurred image's id, the same for its n moments)
``{stem}``    the source file's name without suffix (``folder:DIR`` splits: the *photo*, not the
              face crop; ``score``: the reference file)
``{name}``    the source file's name with suffix
``{suffix}``  the source file's suffix with its dot (``score`` only)
``{subset}``  the sample's subset (``celeba``, ``n5``, ...)
``{kernel}``  the blur kernel's index within its size (an int; MSPL, Shen, demo, make-split)
``{face}``    index of the face within its photo (an int; ``folder:DIR`` and demo splits)
``{k}``       moment index, 0..n-1 (an int; ``--protocol s2v`` only)
``{u}``       moment value u_k = k/(n-1) in [0, 1] (a float; ``--protocol s2v`` only)
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ImageError, UsageError

#: placeholder -> (meaning, a typed example value used to test format specs)
PLACEHOLDERS: dict[str, tuple[str, Any]] = {
    "id": ("sample id (s2v: the blurred image's id)", "000001"),
    "stem": ("source file name without suffix (folder:DIR splits: the photo)", "000001"),
    "name": ("source file name with suffix", "000001.png"),
    "suffix": ("source file suffix with its dot", ".png"),
    "subset": ("subset of the sample", "celeba"),
    "kernel": ("blur kernel index (int)", 3),
    "face": ("index of the face in its photo (int)", 0),
    "k": ("moment index 0..n-1 (int; --protocol s2v)", 2),
    "u": ("moment value k/(n-1) in [0,1] (float; --protocol s2v)", 0.5),
}
#: longest file name (bytes) on the file systems we write to: the bound on a spec's width/precision
NAME_MAX = 255
#: placeholders that name a moment of a single-to-video sample
MOMENT_PLACEHOLDERS = ("k", "u")


def pattern_fields(pattern: str, allowed: Iterable[str], option: str) -> list[str]:
    """The placeholders ``pattern`` uses (in order), after checking it against ``allowed``.

    ``option`` names the pattern in messages (``--pattern``, ``--option pattern``). Raises
    :class:`UsageError` (exit 2) for every refusal listed in the module docstring."""
    allowed = list(allowed)
    listing = ", ".join("{" + a + "}" for a in allowed)
    hint = f"placeholders: {listing}; e.g. '{{stem}}_out.png' or '{{id}}_{{k:02d}}.png' (docs/inputs.md)"
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:  # '{stem', 'stem}', ...
        raise UsageError(f"{option} {pattern!r} is not a valid template ({exc})", hint) from None
    fields: list[str] = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field == "" or field.isdigit():
            raise UsageError(f"{option} {pattern!r} has a positional field {{{field}}}: name a placeholder", hint)
        if "." in field or "[" in field:
            raise UsageError(f"{option} {pattern!r}: {{{field}}} uses attribute or index access, which "
                             "patterns do not allow", hint)
        if field not in allowed:
            close = difflib.get_close_matches(field, allowed, n=2, cutoff=0.5)
            guess = f"; did you mean {' or '.join('{' + c + '}' for c in close)}?" if close else ""
            raise UsageError(f"{option} {pattern!r} uses {{{field}}}, which is not a placeholder{guess}", hint)
        if conversion is not None:
            raise UsageError(f"{option} {pattern!r}: {{{field}!{conversion}}} has a conversion, which "
                             "patterns do not allow", hint)
        if spec and ("{" in spec or "}" in spec):
            raise UsageError(f"{option} {pattern!r}: the format spec of {{{field}}} holds a nested field", hint)
        # a width or precision is padding: beyond a file name's length (255 bytes) it only
        # allocates ({id:>99999999999} would ask for a 100 GB string before any check)
        if any(int(n) > NAME_MAX for n in re.findall(r"\d+", spec or "")):
            raise UsageError(f"{option} {pattern!r}: the format spec of {{{field}}} asks for more than "
                             f"{NAME_MAX} characters (a file name's limit)", hint)
        fields.append(field)
    if not fields:
        raise UsageError(f"{option} {pattern!r} has no placeholder: every sample would pair with the "
                         "same file", hint)
    try:
        pattern.format(**{f: PLACEHOLDERS[f][1] for f in fields})
    except (ValueError, TypeError) as exc:  # a spec that does not fit the type, e.g. '{stem:d}'
        raise UsageError(f"{option} {pattern!r} cannot be filled in ({exc})", hint) from None
    return fields


def sample_values(sample_id: str, meta: dict[str, Any], source_name: str) -> dict[str, Any]:
    """The placeholder values of one sample (those it has; see the module docstring).

    ``source_name`` is the file name ``{stem}``/``{name}`` come from (the blurred file, or the
    reference file for ``score``); a ``folder:DIR`` sample's photo (``meta["photo"]``) wins."""
    name = str(meta.get("photo") or source_name)
    values: dict[str, Any] = {"id": str(meta.get("window", sample_id)), "stem": Path(name).stem,
                              "name": name, "suffix": Path(name).suffix}
    if meta.get("subset") is not None:
        values["subset"] = str(meta["subset"])
    if meta.get("kernel_id") is not None:
        values["kernel"] = int(meta["kernel_id"])
    face = meta.get("face")  # folder:DIR: the index; demo / make-split: the face's name "<photo>_<jj>"
    if isinstance(face, int) or (isinstance(face, str) and face.rsplit("_", 1)[-1].isdigit()):
        values["face"] = int(face) if isinstance(face, int) else int(face.rsplit("_", 1)[-1])
    if meta.get("moment_index") is not None:
        values["k"] = int(meta["moment_index"])
        values["u"] = float(meta["moment"])
    return values


def fill(pattern: str, fields: Iterable[str], values: dict[str, Any], sample_id: str) -> str:
    """``pattern`` filled with ``values``; :class:`ImageError` (that sample's failure) naming a
    placeholder the sample has no value for."""
    lacking = [f for f in fields if f not in values]
    if lacking:
        raise ImageError(f"{sample_id}: this sample has no value for {{{lacking[0]}}} "
                         f"({PLACEHOLDERS[lacking[0]][0]})",
                         "use placeholders this split provides (docs/inputs.md)")
    return pattern.format(**{f: values[f] for f in fields})
