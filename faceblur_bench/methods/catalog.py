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
import math
from collections.abc import Callable, Iterable
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


#: the ``type`` names of a record's options -> the Python type :func:`coerce_option` converts to
OPTION_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}


def coerce_option(method: str, name: str, value: Any, want: type, default: Any = None,
                  minimum: float | None = None) -> Any:
    """``value`` of option ``name`` of ``method`` as ``want`` (``int``, ``float``, ``bool`` or
    ``str``; strings are parsed, numbers must be finite and ``>= minimum``), or a
    :class:`UsageError` (exit 2) naming the option, its type and ``default``. The one rule of
    ``Option.coerce`` (loaded classes) and of ``run``'s checks from static records."""
    from ..errors import UsageError

    bad = UsageError(f"option {name!r} for {method} must be {want.__name__}, got {value!r}",
                     f"pass --option {name}=<{want.__name__}> (default {default!r}); "
                     f"`faceblur-bench methods {method}` lists its options")
    if want is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise bad
    if want is str:
        return value if isinstance(value, str) else str(value)
    if isinstance(value, bool):
        raise bad
    try:
        out = want(value) if isinstance(value, str) else value
    except ValueError:
        raise bad from None
    if want is int and not (isinstance(out, int) or (isinstance(out, float) and out.is_integer())):
        raise bad
    if want is float and not isinstance(out, (int, float)):
        raise bad
    out = want(out)
    if want is float and not math.isfinite(out):
        raise bad
    if minimum is not None and out < minimum:
        raise UsageError(f"option {name!r} for {method} must be >= {minimum:g}, got {out!r}",
                         f"pass --option {name}=<{want.__name__} >= {minimum:g}>")
    return out


def check_options(method: str, options: dict[str, Any], declared: dict[str, dict[str, Any]]) -> None:
    """Refuse ``options`` of ``method`` that its record's ``declared`` options (name ->
    ``{type, default, required, minimum}``) rule out — an unknown name ("did you mean"), a value
    of the wrong type or below its minimum (:func:`coerce_option`) — as ``validate_options`` of
    the loaded class would, without importing it (``run`` and ``runtime`` before torch). A
    missing required option is left to the class (it may say more than the record)."""
    check_option_names(method, options, declared)
    for key, value in options.items():
        want = OPTION_TYPES.get(declared[key]["type"])
        if want is not None:  # a plugin's own type: its class converts it
            coerce_option(method, key, value, want, declared[key]["default"], declared[key].get("minimum"))


def record(name: str, cls: Any, origin: str) -> dict[str, Any]:
    """The listing's record of method class ``cls`` registered as ``name`` from ``origin``.

    ``params``: ``cls().num_parameters()`` (builds the network), None when the method cannot be
    built without options (e.g. ``folder``) or does not count; ``options``: None when the method
    declares none (anything passes through), else option -> ``{type, default, required,
    minimum, help}``; ``checkpoint``: whether the method reads ``--checkpoint``
    (``Method.takes_checkpoint``); ``accepts_moment``: it restores a chosen moment
    (``--protocol s2v``).
    """
    from ..errors import FaceblurError

    try:
        params = cls().num_parameters()
    except FaceblurError:  # needs options to be built (a required option)
        params = None
    specs = getattr(cls, "option_specs", None)
    options = None if specs is None else {
        k: {"type": o.type_name(), "default": o.default, "required": bool(o.required),
            "minimum": o.minimum, "help": o.help}
        for k, o in sorted(specs.items())}
    return {"params": params, "scale": getattr(cls, "scale", 1),
            "description": getattr(cls, "description", ""), "origin": origin, "options": options,
            "checkpoint": bool(getattr(cls, "takes_checkpoint", lambda: True)()),
            "accepts_moment": bool(getattr(cls, "accepts_moment", False))}


CATALOG: dict[str, dict[str, Any]] = {
    'blurred': {
        'params': 0,
        'scale': 1,
        'description': 'No restoration: returns the blurred input (lower bound row of every table)',
        'origin': 'entry point baselines.identity:Blurred',
        'options': {},
        'checkpoint': False,
        'accepts_moment': False,
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
        'accepts_moment': True,
    },
    'dfpg': {
        'params': 44_661_379,
        'scale': 1,
        'description': ('DFPGnet (Jung et al., WACV 2022): deep feature prior guided generator, '
                        'from a trained checkpoint'),
        'origin': 'faceblur_bench.methods.dfpg.method',
        'options': {},
        'checkpoint': True,
        'accepts_moment': False,
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
                            'minimum': None,
                            'help': 'directory holding the restored images'},
                    'pattern': {'type': 'str',
                                'default': '{stem}.png',
                                'required': False,
                                'minimum': None,
                                'help': 'restored file name; placeholders {id} {stem} {name} '
                                        '{subset} {kernel} {face} {k} {u} (docs/inputs.md)'}},
        'checkpoint': False,
        'accepts_moment': True,
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
        'accepts_moment': False,
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
                                 'minimum': 1,
                                 'help': 'Richardson-Lucy iterations'}},
        'checkpoint': False,
        'accepts_moment': False,
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
        'accepts_moment': False,
    },
    'shen': {
        'params': 18_626_333,
        'scale': 1,
        'description': ('Shen et al. (IJCV 2020): coarse net, face parsing on its output, fine '
                        'net; from a `faceblur-bench train shen` checkpoint'),
        'origin': 'faceblur_bench.methods.shen.method',
        'options': None,
        'checkpoint': True,
        'accepts_moment': False,
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
        'accepts_moment': False,
    },
    'shen-n2': {
        'params': 22_201_590,
        'scale': 1,
        'description': ('Shen et al. (IJCV 2020) with 2 cascaded fine nets (Table 8), trained '
                        'checkpoint'),
        'origin': 'faceblur_bench.methods.shen.method',
        'options': None,
        'checkpoint': True,
        'accepts_moment': False,
    },
    'shen-n3': {
        'params': 25_776_847,
        'scale': 1,
        'description': ('Shen et al. (IJCV 2020) with 3 cascaded fine nets (Table 8), trained '
                        'checkpoint'),
        'origin': 'faceblur_bench.methods.shen.method',
        'options': None,
        'checkpoint': True,
        'accepts_moment': False,
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
                                'minimum': 0.0,
                                'help': "regularisation weight of skimage's Wiener filter"}},
        'checkpoint': False,
        'accepts_moment': False,
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
                            'minimum': 1,
                            'help': 'contract tests only: width of the untrained network'},
                    'noise': {'type': 'str',
                              'default': 'none',
                              'required': False,
                              'minimum': None,
                              'help': "none | wN: the w/N notebooks' additive N(1, 0.1) noise on "
                                      'the input, encoder outputs and decoder skips '
                                      '(docs/yun.md)'},
                    'noise_seed': {'type': 'int',
                                   'default': 0,
                                   'required': False,
                                   'minimum': 0,
                                   'help': "seed of the wN noise (each image's stream: this seed "
                                           'and its input pixels)'},
                    'upscale_width': {'type': 'int',
                                      'default': None,
                                      'required': False,
                                      'minimum': 1,
                                      'help': 'contract tests only: x8 CNN width of the untrained '
                                              'network'}},
        'checkpoint': True,
        'accepts_moment': False,
    },
}


def check_checkpoint_takers(names: list[str], checkpoint: Any,
                            takes: Callable[[str], bool] | None = None) -> None:
    """Refuse ``--checkpoint`` (:class:`UsageError`, exit 2) when a method of ``names`` reads
    none: it would be ignored, yet its hash would enter that run's identity.

    ``takes(name)`` says whether a method reads one; by default the methods' registry records
    (static for built-ins, so no torch is imported). The engine passes the class's own
    :meth:`~faceblur_bench.methods.base.Method.takes_checkpoint` (a method object built in a
    notebook has no record)."""
    from ..errors import UsageError
    from ..registry import methods as method_registry

    if checkpoint is None:
        return
    if takes is None:
        def takes(n: str) -> bool:
            return bool(method_registry.record(n).get("checkpoint", True))
    ignoring = [n for n in names if not takes(n)]
    if not ignoring:
        return
    takers = sorted(n for n, r in method_registry.static().items() if r.get("checkpoint"))
    which = ", ".join(ignoring)
    fix = ("drop --checkpoint" if len(ignoring) == len(names)
           else f"run {which} in a command of {'its' if len(ignoring) == 1 else 'their'} own, without --checkpoint")
    raise UsageError(f"--checkpoint {checkpoint}: {which} take{'s' if len(ignoring) == 1 else ''} no "
                     "checkpoint (it would be ignored)",
                     f"{fix}; methods that take a checkpoint: {', '.join(takers)}")


def builtin_baselines() -> list[str]:
    """The default methods of ``run``: every method this distribution registers through an entry
    point that needs no options (``folder`` needs a directory, so it is left out). Read from the
    entry points' metadata: no method module is imported."""
    from importlib.metadata import entry_points

    names = []
    for ep in entry_points(group="faceblur_bench.methods"):
        if ep.dist is not None and ep.dist.name == "faceblur-bench" and ep.name != "folder":
            names.append(ep.name)
    return sorted(names)
