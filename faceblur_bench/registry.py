"""One small registry mechanism for methods, metrics and splits.

Built-in entries register themselves with a decorator when their module is imported; third-party
packages add entries through Python entry points (groups ``faceblur_bench.methods``,
``faceblur_bench.metrics``, ``faceblur_bench.splits``, ``faceblur_bench.trainers``). Plugins are only ever loaded from
declared entry points, never from paths or strings given at run time.

    from faceblur_bench.registry import methods

    @methods.register("my-method")
    class MyMethod(Method): ...
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from importlib.metadata import entry_points
from typing import Callable, Generic, Iterator, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object map filled by decorators (built-ins) and entry points (plugins)."""

    def __init__(self, kind: str, group: str, builtin_modules: tuple[str, ...] = ()):
        self.kind = kind
        self.group = group
        self._builtin_modules = builtin_modules
        self._entries: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._loaded = False

    # -- registration -------------------------------------------------------------------------
    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Class/function decorator: ``@registry.register("name")``. The object gets ``.name``."""

        def deco(obj: T) -> T:
            key = name or getattr(obj, "name", None) or getattr(obj, "__name__")
            self.add(key, obj, origin=getattr(obj, "__module__", "?"))
            return obj

        return deco

    def add(self, name: str, obj: T, origin: str = "?") -> None:
        if name in self._entries and self._origin[name].startswith("entry point ") and \
                not origin.startswith("entry point "):
            self._entries.pop(name)  # a built-in wins over a plugin looked up by name before (get)
        if name in self._entries and self._entries[name] is not obj:
            raise ValueError(
                f"{self.kind} {name!r} registered twice ({self._origin[name]} and {origin})"
            )
        try:
            if getattr(obj, "name", None) in (None, "") or isinstance(obj, type):
                obj.name = name  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass
        self._entries[name] = obj
        self._origin[name] = origin

    # -- lookup -------------------------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for mod in self._builtin_modules:
            importlib.import_module(mod)
        for ep in entry_points(group=self.group):
            if ep.name in self._entries:
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not take the whole tool down
                warnings.warn(
                    f"could not load {self.kind} plugin {ep.name!r} ({ep.value}): {exc}",
                    stacklevel=2,
                )
                continue
            self.add(ep.name, obj, origin=f"entry point {ep.value}")

    def get(self, name: str) -> T:
        if not self._loaded and (name in self._entries or self._load_entry_point(name)):
            return self._entries[name]
        self._load()
        if name in self._entries:
            return self._entries[name]
        known = sorted(self._entries)
        suggestions = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        if not suggestions:
            suggestions = [k for k in known if name.lower() in k.lower()][:3]
        raise UnknownNameError(self.kind, name, known, suggestions)

    def _load_entry_point(self, name: str) -> bool:
        """Load only the plugin declared as ``name`` (``run -m wiener`` need not import every
        built-in method package and its networks); False when there is none (then the full load
        decides). A built-in registered later under the same name still wins (see ``add``)."""
        eps = [ep for ep in entry_points(group=self.group) if ep.name == name]
        if len(eps) != 1:
            return False
        try:
            obj = eps[0].load()
        except Exception:  # noqa: BLE001 — any plugin error is reported by the full load, named
            return False
        if getattr(obj, "__module__", "").startswith("faceblur_bench."):
            return False  # an entry point to a built-in module: keep the built-in order of _load
        self.add(name, obj, origin=f"entry point {eps[0].value}")
        return True

    def origin(self, name: str) -> str:
        self._load()
        return self._origin[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load()
        for k in sorted(self._entries):
            yield k, self._entries[k]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries


methods: Registry = Registry(
    "method", "faceblur_bench.methods", builtin_modules=("faceblur_bench.methods.builtin",)
)
metrics: Registry = Registry(
    "metric", "faceblur_bench.metrics", builtin_modules=("faceblur_bench.metrics.builtin",)
)
splits: Registry = Registry(
    "split", "faceblur_bench.splits", builtin_modules=("faceblur_bench.data.builtin",)
)
trainers: Registry = Registry(
    "trainer", "faceblur_bench.trainers", builtin_modules=("faceblur_bench.methods.builtin",)
)
