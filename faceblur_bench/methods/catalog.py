"""Static metadata of the built-in methods: what ``faceblur-bench methods`` (and ``methods
NAME``, ``run``'s name checks) show without importing torch or building a network.

:data:`CATALOG` holds one :func:`record` per built-in method (the paper packages and the
baselines this distribution declares as entry points): learnable parameters at its default
options (``params``; DFPGnet alone has 44.66 M, and building every network to count them took
seconds), output scale, description, origin (the module that registers it) and declared options.
``tests/test_cli_listings.py`` builds every built-in method and asserts ``record(...)`` equals
its entry here, so a change to an architecture, a description or an option fails that test until
the entry is updated (``python tests/test_cli_listings.py`` rewrites it from the code). Plugins
and methods registered in code are described by :func:`record` from their loaded class.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def check_option_names(method: str, options: Iterable[str], declared: Iterable[str]) -> None:
    """Refuse the first of ``options`` that ``method`` does not declare (:class:`UsageError`,
    exit 2, with "did you mean" and the declared names). Used by ``Method.validate_options`` and,
    with the static ``options`` of a record, by ``run`` before torch is imported."""
    from ..errors import UsageError

    declared = sorted(declared)
    for key in options:
        if key not in declared:
            close = difflib.get_close_matches(key, declared, n=1, cutoff=0.5)
            msg = f"unknown option {key!r} for {method}"
            if close:
                msg += f"; did you mean {close[0]!r}"
            raise UsageError(msg, (f"options of {method}: {', '.join(declared)}" if declared
                                   else f"{method} takes no options")
                             + f" (`faceblur-bench methods {method}`)")


def record(name: str, cls: Any, origin: str) -> dict[str, Any]:
    """The listing's record of method class ``cls`` registered as ``name`` from ``origin``.

    ``params``: ``cls().num_parameters()`` (builds the network), None when the method cannot be
    built without options (e.g. ``folder``) or does not count; ``options``: None when the method
    declares none (anything passes through), else option -> ``{type, default, required, help}``;
    ``checkpoint``: whether the method reads ``--checkpoint`` (``Method.takes_checkpoint``).
    """
    from ..errors import FaceblurError

    try:
        params = cls().num_parameters()
    except FaceblurError:  # needs options to be built (a required option)
        params = None
    specs = getattr(cls, "option_specs", None)
    options = None if specs is None else {
        k: {"type": o.type_name(), "default": o.default, "required": bool(o.required),
            "help": o.help}
        for k, o in sorted(specs.items())}
    return {"params": params, "scale": getattr(cls, "scale", 1),
            "description": getattr(cls, "description", ""), "origin": origin, "options": options,
            "checkpoint": bool(getattr(cls, "takes_checkpoint", lambda: True)())}


CATALOG: dict[str, dict[str, Any]] = {
    'blurred': {
        'params': 0,
        'scale': 1,
        'description': 'No restoration: returns the blurred input (lower bound row of every table)',
        'origin': 'entry point baselines.identity:Blurred',
        'options': {},
        'checkpoint': False,
    },
    'cfmd-gan': {
        'params': 9_246_323,
        'scale': 1,
        'description': ('CFMD-GAN (Lee, Han & Heo, Continuous Facial Motion Deblurring): ContAda '
                        'MIMO-UNet restoring the sharp moment u in [0,1] of a motion-blurred '
                        'face, from a checkpoint'),
        'origin': 'faceblur_bench.methods.cfmd.method',
        'options': None,
        'checkpoint': True,
    },
    'dfpg': {
        'params': 44_661_379,
        'scale': 1,
        'description': ('DFPGnet (Jung et al., WACV 2022): deep feature prior guided generator, '
                        'from a trained checkpoint'),
        'origin': 'faceblur_bench.methods.dfpg.method',
        'options': {},
        'checkpoint': True,
    },
    'folder': {
        'params': None,
        'scale': 1,
        'description': ('Precomputed restorations from another codebase (--option dir=PATH '
                        '[--option pattern={stem}_out.png]; placeholders {id} {stem} {name} '
                        '{subset} {kernel} {face} {k} {u})'),
        'origin': 'entry point baselines.folder:Folder',
        'options': {'dir': {'type': 'str',
                            'default': None,
                            'required': False,
                            'help': 'directory holding the restored images'},
                    'pattern': {'type': 'str',
                                'default': '{stem}.png',
                                'required': False,
                                'help': 'restored file name; placeholders {id} {stem} {name} '
                                        '{subset} {kernel} {face} {k} {u} (docs/inputs.md)'}},
        'checkpoint': False,
    },
    'mspl-gan': {
        'params': 18_471_308,
        'scale': 1,
        'description': ('MSPL-GAN (Lee et al., IEEE Access 2020): 4 stacked U-Nets restoring face '
                        "parts progressively, from the authors' netG_last.pth or a trained "
                        'checkpoint'),
        'origin': 'faceblur_bench.methods.mspl.method',
        'options': None,
        'checkpoint': True,
    },
    'richardson-lucy': {
        'params': 0,
        'scale': 1,
        'description': ('Oracle Richardson-Lucy deconvolution with the true kernel (skimage, 10 '
                        'iterations)'),
        'origin': 'entry point baselines.deconvolution:RichardsonLucy',
        'options': {'num_iter': {'type': 'int',
                                 'default': 10,
                                 'required': False,
                                 'help': 'Richardson-Lucy iterations'}},
        'checkpoint': False,
    },
    'sappgan': {
        'params': 44_661_379,
        'scale': 1,
        'description': ('SAPPGAN (Han et al., IEEE Access 2023): DFPGnet generator trained with '
                        'the SAPP discriminator, PW loss and coarse-to-fine α, from a trained '
                        'checkpoint'),
        'origin': 'faceblur_bench.methods.sappgan.method',
        'options': {},
        'checkpoint': True,
    },
    'shen': {
        'params': 18_626_333,
        'scale': 1,
        'description': ('Shen et al. (IJCV 2020): coarse net, face parsing on its output, fine '
                        'net; from a `faceblur-bench train shen` checkpoint'),
        'origin': 'faceblur_bench.methods.shen.method',
        'options': None,
        'checkpoint': True,
    },
    'shen-cvpr18': {
        'params': 14_811_588,
        'scale': 1,
        'description': ('Shen et al. (CVPR 2018): parsing on the blurred input + one deblurring '
                        "net; the authors' MatConvNet net_G/net_P .mat release or a `train shen` "
                        'checkpoint'),
        'origin': 'faceblur_bench.methods.shen.method',
        'options': None,
        'checkpoint': True,
    },
    'shen-n2': {
        'params': 22_201_590,
        'scale': 1,
        'description': ('Shen et al. (IJCV 2020) with 2 cascaded fine nets (Table 8), trained '
                        'checkpoint'),
        'origin': 'faceblur_bench.methods.shen.method',
        'options': None,
        'checkpoint': True,
    },
    'shen-n3': {
        'params': 25_776_847,
        'scale': 1,
        'description': ('Shen et al. (IJCV 2020) with 3 cascaded fine nets (Table 8), trained '
                        'checkpoint'),
        'origin': 'faceblur_bench.methods.shen.method',
        'options': None,
        'checkpoint': True,
    },
    'wiener': {
        'params': 0,
        'scale': 1,
        'description': ('Oracle Wiener deconvolution with the true kernel '
                        '(skimage.restoration.wiener, balance 0.05)'),
        'origin': 'entry point baselines.deconvolution:Wiener',
        'options': {'balance': {'type': 'float',
                                'default': 0.05,
                                'required': False,
                                'help': "regularisation weight of skimage's Wiener filter"}},
        'checkpoint': False,
    },
    'yun': {
        'params': 58_295_494,
        'scale': 8,
        'description': ('Yun et al. (IEEE Access 2020): joint x8 face SR + deblurring GAN, 32x32 '
                        '-> 256x256, from a trained checkpoint'),
        'origin': 'faceblur_bench.methods.yun.method',
        'options': {'ngf': {'type': 'int',
                            'default': None,
                            'required': False,
                            'help': 'contract tests only: width of the untrained network'},
                    'noise': {'type': 'str',
                              'default': 'none',
                              'required': False,
                              'help': "none | wN: the w/N notebooks' additive N(1, 0.1) noise on "
                                      'the input, encoder outputs and decoder skips '
                                      '(docs/yun.md)'},
                    'noise_seed': {'type': 'int',
                                   'default': 0,
                                   'required': False,
                                   'help': "seed of the wN noise (each image's stream: this seed "
                                           'and its input pixels)'},
                    'upscale_width': {'type': 'int',
                                      'default': None,
                                      'required': False,
                                      'help': 'contract tests only: x8 CNN width of the untrained '
                                              'network'}},
        'checkpoint': True,
    },
}
