"""Typed errors. Every error names the thing that is wrong and how to fix it.

The CLI maps :class:`UsageError` subclasses to exit code 2 and prints ``str(err)``.
"""

from __future__ import annotations


class FaceblurError(Exception):
    """Base class. ``hint`` tells the user how to fix the problem."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n  fix: {hint}")


class UsageError(FaceblurError):
    """Bad names, bad options, unusable input: exit code 2."""

    exit_code = 2


def check_range(what: str, value: object, lo: float, hi: float | None = None,
                integer: bool = False) -> float | int:
    """``value`` when it is a finite number in ``[lo, hi]`` (an integer when ``integer``), else a
    :class:`UsageError` (exit 2) naming the option and the accepted range: every numeric option
    is checked at the door, so NaN, -1 or 2**70 never reach numpy, a lock or a sleep."""
    import math

    def num(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    span = f"[{num(lo)}, {num(hi)}]" if hi is not None else f">= {num(lo)}"
    kind = "an integer" if integer else "a number"
    ok = (isinstance(value, int) and not isinstance(value, bool)) if integer else (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))
    if not ok or value < lo or (hi is not None and value > hi):  # type: ignore[operator]
        raise UsageError(f"{what} {value!r} is not {kind} in {span}", f"pass {what} as {kind} in {span}")
    return value  # type: ignore[return-value]


#: accepted seeds (numpy's ``np.random.seed`` takes 32-bit unsigned integers)
SEED_MAX = 2**32 - 1
#: longest accepted ``--wait`` for a results lock, in seconds (one day)
WAIT_MAX_S = 86400.0


class UnknownNameError(UsageError):
    """An unknown method / metric / split / preset name, with 'did you mean' suggestions."""

    def __init__(self, kind: str, name: str, known: list[str], suggestions: list[str]):
        self.kind, self.name, self.known, self.suggestions = kind, name, known, suggestions
        msg = f"unknown {kind} {name!r}"
        if suggestions:
            msg += f"; did you mean {' or '.join(repr(s) for s in suggestions)}?"
        hint = f"run `faceblur-bench {kind}s` to list them" if kind in {"method", "metric", "split"} else None
        super().__init__(msg, hint or f"known: {', '.join(known)}")


class DataNotFoundError(UsageError):
    """A data root or split that is missing or not in the expected layout."""


class DataLayoutError(UsageError):
    """A split whose files do not match the published layout (names a file and what was expected)."""


class WeightsMissingError(FaceblurError):
    """A pretrained file that is not on disk. Says where it was looked for and where it comes from.

    ``short`` (when set) is a one-line form for table cells and summaries.
    """

    short: str | None = None


class PackageMissingError(WeightsMissingError):
    """An optional Python package that a metric runs on (e.g. dlib) is not installed.

    The metric is reported as "n/a — <short>" and the rest of the run goes on; ``short`` names the
    packages to install.
    """


class MethodWeightsMissingError(WeightsMissingError):
    """A checkpoint or weight file that a *method* needs is missing, whether it is the default
    location or a path the user named: the run cannot start, so it is unusable input (exit 2,
    like missing data). A metric's missing weights are not this: the metric reports "n/a"."""

    exit_code = 2


class WeightsOverrideError(UsageError):
    """An explicit weight override (``--weights NAME=PATH``, ``$FACEBLUR_WEIGHTS_<NAME>``) that is
    not a file: always an error (exit 2), even without ``--strict`` — never a fall-through."""


class WeightsIntegrityError(FaceblurError):
    """A pretrained file whose sha256 does not match the known value."""


class MethodWeightsRejectedError(WeightsIntegrityError):
    """A checkpoint or weight file of a *method* (or a trainer) that is refused: code-carrying
    pickle, damaged, foreign, wrong sha256. The run cannot start: exit 2, like a missing one."""

    exit_code = 2


def cannot_start(exc: FaceblurError) -> FaceblurError:
    """``exc`` (a weight file missing or refused while a method or trainer is being set up) as
    the exit-2 error it is there: nothing ran (docs/exit-codes.md). Other errors unchanged."""
    if exc.exit_code == 2:
        return exc
    if isinstance(exc, WeightsMissingError):
        new: FaceblurError = MethodWeightsMissingError(exc.message, exc.hint)
    elif isinstance(exc, WeightsIntegrityError):
        new = MethodWeightsRejectedError(exc.message, exc.hint)
    else:
        return exc
    new.__cause__ = exc
    return new


class ImageError(FaceblurError):
    """An image that cannot be decoded or has an unusable format (per-image failure)."""


class MethodOutputError(FaceblurError):
    """A method output with wrong shape, dtype, range, or non-finite values (per-image failure)."""


class ResultsLockedError(UsageError):
    """Another run holds the lock on the same results directory."""


class ResultsPathError(UsageError):
    """A results path that cannot be written as asked (exit 2): ``--out`` or a directory under it
    is a file, a symlink leads out of the results root, the file system is read-only or the
    permissions forbid it. Names the path and the fix; nothing stored is touched."""


class DiskFullError(FaceblurError):
    """The disk holding the results filled up (``ENOSPC``/``EDQUOT``) while writing ``path``.

    Exit code 1. Rows already stored stay intact (a run resumes from them once space is freed);
    the partial file being written is removed.
    """

    def __init__(self, path: object, detail: str = ""):
        self.path = str(path)
        super().__init__(f"disk full at {self.path}" + (f" ({detail})" if detail else ""),
                         "free space on that disk (or pass --out on another one) and re-run the "
                         "same command: images already stored are not recomputed")


def is_disk_full(exc: BaseException) -> bool:
    """Whether an OSError means "no space left" (ENOSPC, or a quota: EDQUOT)."""
    import errno

    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class Interrupted(KeyboardInterrupt):
    """SIGINT (exit 130) or SIGTERM (exit 143) received. The CLI raises it from its signal
    handlers; a run that catches it stores its summary, attaches ``stored`` (what is kept: run
    directory, counts) and re-raises it."""

    exit_code = 130
    signal_name = "SIGINT"
    stored: dict | None = None


class Terminated(Interrupted):
    """SIGTERM: like Ctrl-C, but exit code 143 (128 + 15)."""

    exit_code = 143
    signal_name = "SIGTERM"


class ResultsWarning(UserWarning):
    """Stored results that are not used as they are: a malformed row or summary (skipped, named
    by file and line), or a row that contradicts an already stored one."""


#: messages already warned in the current :func:`stored_warnings_once` scope (None: no scope)
_warned: set[str] | None = None


def warn_stored(message: str, stacklevel: int = 1) -> None:
    """Warn :class:`ResultsWarning` ``message`` (a stored file, its line, why it is not used).

    Within a :func:`stored_warnings_once` scope (a CLI command, an ``evaluate`` call) each
    message is shown once, however many times the file is read: a command reads a run's summary,
    sessions and rows at several steps, and a tampered file is one problem, not one per read.
    In a sharded run only rank 0 speaks: every rank reads the same files. ``stacklevel`` counts
    from the caller of this function, as for :func:`warnings.warn`.
    """
    import os
    import warnings

    if os.environ.get("RANK", "0") != "0":
        return
    if _warned is not None:
        if message in _warned:
            return
        _warned.add(message)
    warnings.warn(ResultsWarning(message), stacklevel=stacklevel + 1)


class stored_warnings_once:  # noqa: N801 — used as a context manager, like contextlib's
    """Context: each :func:`warn_stored` message at most once inside it (nested scopes share the
    outermost one's record)."""

    def __enter__(self) -> stored_warnings_once:
        global _warned
        self._outer = _warned
        if _warned is None:
            _warned = set()
        return self

    def __exit__(self, *exc: object) -> None:
        global _warned
        _warned = self._outer
