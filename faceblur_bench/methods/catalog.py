"""Static metadata of the built-in methods: what ``faceblur-bench methods`` shows without
building a network.

``PARAMETER_COUNTS``: learnable parameters of each built-in method's network at its default
options (``Method().num_parameters()``; 0 for the non-learned baselines). Listing methods must
answer at once, and building every network to count its parameters took seconds (DFPGnet alone
has 44.66 M). ``tests/test_cli_listings.py`` builds every network and asserts these numbers, so
a change to an architecture fails that test until the entry here is updated.

A method not listed here (a plugin) is counted by its own ``num_parameters()``.
"""

from __future__ import annotations

PARAMETER_COUNTS: dict[str, int] = {
    "blurred": 0,
    "wiener": 0,
    "richardson-lucy": 0,
    "cfmd-gan": 9_246_323,
    "dfpg": 44_661_379,
    "sappgan": 44_661_379,
    "mspl-gan": 18_471_308,
    "shen": 18_626_333,
    "shen-cvpr18": 14_811_588,
    "shen-n2": 22_201_590,
    "shen-n3": 25_776_847,
    "yun": 58_295_494,
}
#: built-in methods without a parameter count: they need options to be built (``folder``)
UNCOUNTED: frozenset[str] = frozenset({"folder"})
