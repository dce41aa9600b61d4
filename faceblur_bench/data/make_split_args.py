"""The names and values ``make-split`` accepts, checked without torch (``faceblur-bench
make-split`` answers a typo at once; :func:`~faceblur_bench.data.synth.make_split` applies the
same checks before any work).

Protocols ``mspl`` (subsets celeba | celeba-hq | ffhq, variants center | random, no noise by
default) and ``shen`` (subsets helen | celeba, centre only, σ = 0.01 by default); noise presets
(:data:`NOISE_PRESETS`) or a σ in [0, 1]; kernel generators of :mod:`.kernels`.
"""

from __future__ import annotations

import difflib

from ..errors import UnknownNameError, UsageError

PROTOCOLS = ("mspl", "shen")
SHEN_SUBSETS = {"helen": "Helen", "celeba": "CelebA"}
MSPL_VARIANTS = ("center", "random")
#: Gaussian noise σ on the [0, 1] scale.
#: ``mspl-train``: ``(1/255)·N(0, 4)`` on [-1, 1] images in ``MSPL-GAN:src/train.py`` = 2/255 on [0, 1];
#: ``shen``: σ = 0.01 (Shen et al. paper); ``none``: the released MSPL test files carry no noise.
NOISE_PRESETS: dict[str, float] = {"none": 0.0, "mspl-train": 2.0 / 255.0, "shen": 0.01}


def check_protocol(protocol: str) -> None:
    """:class:`UnknownNameError` (with "did you mean") unless ``protocol`` is mspl or shen."""
    if protocol not in PROTOCOLS:
        raise UnknownNameError("protocol", protocol, list(PROTOCOLS),
                               difflib.get_close_matches(protocol, PROTOCOLS, n=1, cutoff=0.5))


def noise_sigma(preset: str | float) -> float:
    """σ of a named preset (see :data:`NOISE_PRESETS`) or a number passed through."""
    if isinstance(preset, (int, float)):
        from ..errors import check_range

        return float(check_range("--noise", preset, 0.0, 1.0))  # NaN, inf, < 0 refused
    if preset not in NOISE_PRESETS:
        raise UsageError(f"unknown noise preset {preset!r}", f"use one of {', '.join(NOISE_PRESETS)} or a number")
    return NOISE_PRESETS[preset]


def resolve_args(protocol: str, subset: str | None, variant: str, noise: str | float | None,
                 kernel_kind: str) -> tuple[str, float]:
    """``(subset, noise σ)`` of a ``make-split`` request with the protocol's defaults filled in,
    or a :class:`UsageError` (exit 2) naming the first bad value: protocol, subset, variant,
    noise, kernel generator."""
    from .kernels import check_generator
    from .mspl import MSPL_SUBSETS

    check_protocol(protocol)
    if protocol == "mspl":
        subset = subset or "celeba"
        if subset not in MSPL_SUBSETS:
            raise UsageError(f"unknown MSPL subset {subset!r}", f"use one of {', '.join(MSPL_SUBSETS)}")
        if variant not in MSPL_VARIANTS:
            raise UsageError(f"unknown MSPL variant {variant!r}", "use center or random")
        sigma = noise_sigma("none" if noise is None else noise)
    else:
        subset = subset or "helen"
        if subset not in SHEN_SUBSETS:
            raise UsageError(f"unknown Shen subset {subset!r}", f"use one of {', '.join(SHEN_SUBSETS)}")
        if variant != "center":
            raise UsageError("--variant applies to the mspl protocol only", "drop --variant")
        sigma = noise_sigma("shen" if noise is None else noise)
    check_generator(kernel_kind)
    return subset, sigma
