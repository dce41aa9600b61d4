"""Named variants of Shen et al. (architecture presets) and their published parameter counts.

================  ==========================================================================
``ijcv``          the IJCV 2020 model: G_c → P(y_c) → G_f, 6 residual blocks, 11×11 first layer
                  (the "Ours" rows of Tables 9–12; Table 8 "1 stage")
``cvpr2018``      the CVPR 2018 model (and its MatConvNet release): P on the blurred input,
                  one deblurring net with 5 residual blocks, no coarse net
``n2``, ``n3``    IJCV with 2 / 3 cascaded fine nets (Table 8)
``n2-shared``,    IJCV applying one fine net 2 / 3 times (Table 8 "shared")
``n3-shared``
``k5``, ``k9``,   IJCV with a 5×5 / 9×9 / 13×13 first layer (Table 7)
``k13``
================  ==========================================================================
"""

from __future__ import annotations

import difflib
from typing import Any

from ...errors import UnknownNameError
from .networks import ShenConfig

DEFAULT = "ijcv"

VARIANTS: dict[str, dict[str, Any]] = {
    "ijcv": {},
    "cvpr2018": {"variant": "cvpr2018", "res_blocks": 5},
    "n2": {"fine_nets": 2},
    "n3": {"fine_nets": 3},
    "n2-shared": {"fine_nets": 2, "share_fine": True},
    "n3-shared": {"fine_nets": 3, "share_fine": True},
    "k5": {"first_kernel": 5},
    "k9": {"first_kernel": 9},
    "k13": {"first_kernel": 13},
}

DESCRIPTIONS: dict[str, str] = {
    "ijcv": "IJCV 2020: coarse net, parsing net on its output, fine net (the paper's 'Ours')",
    "cvpr2018": "CVPR 2018: parsing net on the blurred input, one 5-block deblurring net",
    "n2": "IJCV with 2 cascaded fine deblurring nets (Table 8)",
    "n3": "IJCV with 3 cascaded fine deblurring nets (Table 8)",
    "n2-shared": "IJCV applying one fine net twice (Table 8, shared weights)",
    "n3-shared": "IJCV applying one fine net three times (Table 8, shared weights)",
    "k5": "IJCV with a 5x5 first layer (Table 7)",
    "k9": "IJCV with a 9x9 first layer (Table 7)",
    "k13": "IJCV with a 13x13 first layer (Table 7)",
}

#: parameter counts printed in the paper ("M"), keyed by variant (Tables 7, 8, 12)
PUBLISHED_PARAMS_M: dict[str, float] = {
    "k5": 14.56, "k9": 14.70, "ijcv": 14.80, "k13": 14.92,  # Table 7 (ijcv also Table 8 N=1)
    "n2": 26.66, "n3": 38.52, "n2-shared": 14.80, "n3-shared": 14.80,  # Table 8
    "cvpr2018": 14.8,  # Table 12 "Shen et al. (2018)"; Table 12 gives "Ours" as 26.6 M
}


def variant_overrides(name: str) -> dict[str, Any]:
    """ShenConfig overrides of variant ``name`` (case-insensitive; "did you mean" when unknown)."""
    key = name.lower()
    if key not in VARIANTS:
        raise UnknownNameError("Shen variant", name, list(VARIANTS),
                               difflib.get_close_matches(key, list(VARIANTS), n=2))
    return VARIANTS[key]


def variant_config(name: str, **overrides: Any) -> ShenConfig:
    """The :class:`ShenConfig` of variant ``name`` with further keyword ``overrides``."""
    d = ShenConfig().to_dict()
    d.update(variant_overrides(name))
    d.update(overrides)
    return ShenConfig.from_dict(d)
