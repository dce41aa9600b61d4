"""Text that comes from data or from the user (split, folder, method and metric names, reasons,
error messages) made safe to show: the one rule every output applies — terminal, Markdown,
LaTeX, CSV and file names.

A folder name may hold an escape sequence or a newline (``mkdir $'a\\e[2Jb\\nc'``): written raw,
it clears the terminal, ends a Markdown row, makes pdflatex stop in a ``\\caption`` or puts a
newline in a file name. :func:`printable` removes terminal escape sequences, other control
characters and text-direction overrides, and turns line breaks and tabs into spaces; plain names
are returned unchanged.
"""

from __future__ import annotations

import re
import unicodedata

# terminal escape sequences (CSI "ESC [ ... letter", OSC "ESC ] ... BEL|ESC \\", two-byte ESC x)
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])")
# text direction overrides/isolates: they reorder what a reader sees without being visible
_BIDI = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_BREAKS = "\t\n\r\v\f\x85\u2028\u2029"


def printable(s: object) -> str:
    """``str(s)`` without terminal escape sequences, control characters (C0, DEL, C1) or bidi
    overrides; line breaks and tabs become single spaces. Idempotent; plain text unchanged."""
    text = _ANSI.sub("", str(s)).translate(_BIDI)
    return "".join(" " if ch in _BREAKS else ch for ch in text
                   if ch in _BREAKS or unicodedata.category(ch) != "Cc")
