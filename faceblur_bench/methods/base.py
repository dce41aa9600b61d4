"""The one interface every restoration method implements.

Contract: ``restore(blurred)`` takes a ``(N, 3, H, W)`` float32 tensor in [0, 1] on the method's
device and returns a ``(N, 3, H*scale, W*scale)`` float32 tensor in [0, 1]. Methods never see
file paths. Per-sample metadata (e.g. the true kernel for oracle baselines, the moment factor
for continuous deblurring) arrives through ``meta``; ``meta[i]["notes"]`` is a list a method may
append a line to (stored in that image's row as a warning).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..files import sha256_file
from .catalog import check_option_names, coerce_option
from ..nets.loading import read_state_dict


@dataclass(frozen=True)
class Option:
    """One declared method option (``--option NAME=VALUE``).

    ``type`` is ``float``, ``int``, ``bool`` or ``str``; ``default`` is what the method uses when
    the option is not given (``None`` with ``required=True``: it must be given); ``minimum``
    (numbers) is inclusive.
    """

    type: type
    default: Any = None
    help: str = ""
    required: bool = False
    minimum: float | None = None

    def type_name(self) -> str:
        return self.type.__name__

    def coerce(self, method: str, name: str, value: Any) -> Any:
        """``value`` as ``self.type`` (strings are parsed), or a :class:`UsageError` naming it
        (:func:`~faceblur_bench.methods.catalog.coerce_option`)."""
        return coerce_option(method, name, value, self.type, self.default, self.minimum)


def check_options_json(options: dict[str, Any], method: str) -> None:
    """Refuse method options that the run summary could not store, before any work is done.

    Options identify a run (its key) and are written to ``summary.json``, so every value must be
    JSON: str, int, float, bool, None, lists and objects with string keys (``Path`` and numpy
    scalars are written as str / numbers, as the summary writer does). Raises :class:`UsageError`
    naming the option and its type.
    """
    import json

    from ..errors import UsageError
    from ..results import json_default

    for key, value in dict(options or {}).items():
        try:
            if not isinstance(key, str):
                raise TypeError(f"option name of type {type(key).__name__}")
            json.dumps(value, default=json_default, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"option {key!r} of method {method!r} cannot be stored in the run summary "
                f"({type(value).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                "pass options as JSON values (str, number, bool, null, list, object with string "
                "keys), e.g. --option key=value") from None


class Method(ABC):
    """Base class of a restoration method (registered in ``faceblur_bench.registry.methods``)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: output size / input size (1 for deblurring, 8 for joint x8 SR + deblurring)
    scale: ClassVar[int] = 1
    #: True when the method reads ``meta[i]["kernel"]`` (oracle: uses the true blur kernel)
    uses_kernel: ClassVar[bool] = False
    #: True when the method restores a chosen moment of the exposure: it reads
    #: ``meta[i]["moment"]`` (u in [0, 1]; continuous deblurring, single-to-video protocols)
    accepts_moment: ClassVar[bool] = False
    #: options giving a small network, used with :meth:`init_untrained` by the contract tests
    contract_options: ClassVar[dict[str, Any]] = {}
    #: declared options (name -> :class:`Option`); ``{}``: takes none; ``None`` (plugins that
    #: declare nothing): any JSON-serialisable option is passed through unchecked
    option_specs: ClassVar[dict[str, Option] | None] = None

    def __init__(self, **options: Any):
        self.options = self.validate_options(options)
        self.device = torch.device("cpu")
        self.checkpoint: Path | None = None
        #: what the loaded weights are (preset, epoch, step, release, "untrained"): part of the
        #: run identity when set; None for methods without learned weights
        self.trained: dict[str, Any] | None = None

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Options checked against :attr:`option_specs` and coerced to their types.

        Raises :class:`~faceblur_bench.errors.UsageError` (exit 2) for an unknown name (with
        "did you mean"), a value of the wrong type or below its minimum, a missing required
        option, or a value that cannot be stored as JSON (options are part of the run identity).
        Defaults are not filled in: a run's stored options are the ones given.
        """
        from ..errors import UsageError

        method = cls.name or cls.__name__
        specs = cls.option_specs
        out: dict[str, Any] = {}
        if specs is not None:
            check_option_names(method, options, specs)
        for key, value in options.items():
            out[key] = specs[key].coerce(method, key, value) if specs is not None else value
        for key, spec in (specs or {}).items():
            if spec.required and key not in out:
                raise UsageError(f"method {method!r} needs option {key!r} ({spec.help or spec.type_name()})",
                                 f"pass --option {key}=<{spec.type_name()}>")
        try:
            json.dumps(out, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"options of {method} cannot be stored as JSON ({exc})",
                             "give numbers, booleans or strings as option values") from None
        return out

    @classmethod
    def takes_checkpoint(cls) -> bool:
        """Whether ``--checkpoint`` means anything to this method: its class overrides
        :meth:`load` (where a checkpoint is read). The base ``load`` ignores one, and a run of a
        method that ignores it must not carry it (its hash would enter the run identity)."""
        return cls.load is not Method.load

    @classmethod
    def check_protocol_options(cls, protocol: str, options: dict[str, Any]) -> None:
        """Refuse (:class:`~faceblur_bench.errors.UsageError`) options that do not fit the
        evaluation ``protocol`` (``s2s`` | ``s2v``), before any work. Base: nothing to check."""

    def load(self, checkpoint: str | Path | None, device: torch.device | str) -> None:
        """Load weights (if any) and move to ``device``. Base: only records the device."""
        self.device = torch.device(device)
        self.checkpoint = Path(checkpoint) if checkpoint else None

    def init_untrained(self, device: torch.device | str, *, tiny: bool = False) -> None:
        """Ready the method with untrained (random) weights: the paper-size network, or with
        ``tiny`` the small one of :attr:`contract_options`.

        For timing (``faceblur-bench runtime --untrained``) and the contract tests' shape / range
        checks only: ``run`` never calls it, so no score is ever computed with random weights.
        Default (methods without a network, or whose network ``__init__`` builds): :meth:`load`
        without a checkpoint.
        """
        self.load(None, device)

    @abstractmethod
    def restore(self, blurred: torch.Tensor, meta: Sequence[dict] | None = None) -> torch.Tensor:
        """Restore a batch: ``(N,3,H,W)`` float32 in [0,1] -> ``(N,3,H*scale,W*scale)`` in [0,1]."""

    def num_parameters(self) -> int | None:
        """Number of learnable parameters, or None for non-learned methods."""
        return None

    def identity(self) -> dict[str, Any]:
        """What distinguishes two runs of this method (name, options, checkpoint sha256, and
        :attr:`trained` when the method has learned weights)."""
        ck = None
        if self.checkpoint is not None and self.checkpoint.is_file():
            ck = sha256_file(self.checkpoint)
        ident = {"method": self.name, "options": self.options, "checkpoint_sha256": ck}
        if self.trained is not None:
            ident["trained"] = self.trained
        return ident

    def check_restore_input(self, blurred: torch.Tensor, loaded: bool,
                            load_hint: str = "call load(checkpoint, device) first (CLI: --checkpoint PATH)",
                            size: int | None = None, size_hint: str | None = None) -> None:
        """The refusals every learned method's ``restore`` starts with: no weights loaded
        (``loaded`` False), or ``blurred`` not a ``(N, 3, H, W)`` batch (with ``size``: not
        ``(N, 3, size, size)``)."""
        from ..errors import UsageError

        if not loaded:
            raise UsageError(f"{self.name}: no trained weights loaded", load_hint)
        shape = tuple(blurred.shape)
        if blurred.dim() != 4 or shape[1] != 3 or (size is not None and shape[-2:] != (size, size)):
            want = f"(N, 3, {size}, {size}) inputs" if size is not None else "(N, 3, H, W)"
            raise UsageError(f"{self.name}.restore expects {want}, got {shape}", size_hint)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` padded at the bottom and right to sizes divisible by ``multiple``
    (reflect; replicate where the image is too small to reflect); the caller crops the output
    back with ``[..., :H, :W]``. Unchanged when already divisible."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if (ph < h and pw < w) else "replicate")


class TorchMethod(Method):
    """A method backed by one ``nn.Module`` in ``self.net`` (built by :meth:`build`)."""

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.net: nn.Module = self.build()

    @abstractmethod
    def build(self) -> nn.Module:
        """Construct the network (called once from ``__init__``)."""

    def num_parameters(self) -> int | None:
        return sum(p.numel() for p in self.net.parameters())

    def load(self, checkpoint: str | Path | None, device: torch.device | str) -> None:
        super().load(checkpoint, device)
        if checkpoint is not None:
            from ..errors import UsageError, WeightsIntegrityError

            if not Path(checkpoint).is_file():
                raise UsageError(f"checkpoint {checkpoint} does not exist", "check the --checkpoint path")
            state = read_state_dict(checkpoint, wrapper_key="model")
            try:
                self.net.load_state_dict(state)
            except RuntimeError as exc:  # wrong keys or shapes
                raise WeightsIntegrityError(
                    f"checkpoint {checkpoint} does not fit {self.name or type(self).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}",
                    "pass a state dict (optionally under 'model') of this method's network") from None
        self.net.to(self.device).eval()


