"""One small registry mechanism for methods, metrics and splits.

Built-in entries register themselves with a decorator when their module is imported; third-party
packages add entries through Python entry points (groups ``faceblur_bench.methods``,
``faceblur_bench.metrics``, ``faceblur_bench.splits``, ``faceblur_bench.trainers``). Plugins are only ever loaded from
declared entry points, never from paths or strings given at run time.

    from faceblur_bench.registry import methods

    @methods.register("my-method")
    class MyMethod(Method): ...

Names without imports: a registry with a static catalog (``catalog``: a module holding
``CATALOG``, name -> record of every built-in, and ``record(name, obj, origin)`` computing the
same record from a loaded object; a test asserts the two agree) answers :meth:`Registry.check`
and :meth:`Registry.records` from that catalog, the names declared by entry points (package
metadata, nothing loaded) and the entries registered in this process — so listings and "did you
mean" answer without importing torch or any network. Only plugins' records need their objects.
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object map filled by decorators (built-ins) and entry points (plugins)."""

    def __init__(self, kind: str, group: str, builtin_modules: tuple[str, ...] = (),
                 catalog: str | None = None):
        self.kind = kind
        self.group = group
        self._builtin_modules = builtin_modules
        #: module (by name: the catalog lives in a lower layer) with the built-ins' static records
        self._catalog = catalog
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
        self._load_entry_points(skip=())

    def _load_entry_points(self, skip: Iterable[str]) -> None:
        skip = set(skip)
        for ep in entry_points(group=self.group):
            if ep.name in self._entries or ep.name in skip:
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
        if not self._loaded and (name in self._entries or self._load_builtin_module(name)
                                 or self._load_entry_point(name)):
            return self._entries[name]
        self._load()
        if name in self._entries:
            return self._entries[name]
        raise self._unknown(name, self._entries)

    def _unknown(self, name: str, names: Iterable[str]) -> UnknownNameError:
        known = sorted(names)
        suggestions = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        if not suggestions:
            suggestions = [k for k in known if name.lower() in k.lower()][:3]
        return UnknownNameError(self.kind, name, known, suggestions)

    # -- static answers (no built-in module imported) -----------------------------------------
    def _catalog_module(self) -> ModuleType | None:
        return None if self._catalog is None else importlib.import_module(self._catalog)

    def static(self) -> dict[str, dict[str, Any]]:
        """Name -> static record of every built-in entry (empty without a catalog)."""
        mod = self._catalog_module()
        return {} if mod is None else mod.CATALOG

    def declared(self) -> list[str]:
        """Every name this registry can resolve, sorted, loading nothing: the static catalog's
        (all of the registry's names when it has none: then the built-ins are loaded), the
        entry points' (package metadata) and those registered in this process."""
        if self._catalog is None:
            self._load()
        names = set(self.static()) | set(self._entries)
        names.update(ep.name for ep in entry_points(group=self.group))
        return sorted(names)

    def check(self, name: str) -> None:
        """Refuse an unknown ``name`` with "did you mean" (:class:`UnknownNameError`, exit 2) as
        :meth:`get` would, without importing a built-in module. A name not declared anywhere
        is looked for once more after loading the plugins (their import may register further
        names in code); the built-ins need no load: the catalog lists all of them (tested)."""
        if name in self.declared():
            return
        self._load_plugins()
        if name not in self._entries:
            raise self._unknown(name, self.declared())

    def records(self) -> list[tuple[str, dict[str, Any]]]:
        """``(name, record)`` of every entry, sorted by name: built-ins from the static catalog
        (no module imported), plugins and entries registered in code from their objects
        (``catalog.record``; plugins are loaded for that). Needs a catalog."""
        mod = self._catalog_module()
        if mod is None:
            raise TypeError(f"the {self.kind} registry has no static catalog")
        self._load_plugins()
        return [(n, self.record(n)) for n in sorted(set(mod.CATALOG) | set(self._entries))]

    def record(self, name: str) -> dict[str, Any]:
        """The static record of built-in ``name`` (nothing imported), or the record of the
        loaded plugin / in-process entry ``name`` (``catalog.record``); an unknown name is
        refused with "did you mean" (:meth:`check`). Needs a catalog."""
        mod = self._catalog_module()
        if mod is None:
            raise TypeError(f"the {self.kind} registry has no static catalog")
        if name in mod.CATALOG:
            return mod.CATALOG[name]
        self.check(name)
        obj = self.get(name)
        return mod.record(name, obj, self._origin[name])

    def _load_plugins(self) -> None:
        """Load every entry point that is not a built-in of the static catalog (a plugin that
        fails to load is named in a warning and left out, as in the full load)."""
        self._load_entry_points(skip=self.static())

    def _load_builtin_module(self, name: str) -> bool:
        """Import only the module the static catalog names as built-in ``name``'s origin
        (``run -m cfmd-gan`` need not import every other method package); False when the
        catalog has no such module or the module did not register ``name`` (then the full load
        decides)."""
        origin = self.static().get(name, {}).get("origin", "")
        if not origin or origin.startswith("entry point "):
            return False
        importlib.import_module(origin)
        return name in self._entries

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
    "method", "faceblur_bench.methods", builtin_modules=("faceblur_bench.methods.builtin",),
    catalog="faceblur_bench.methods.catalog",
)
metrics: Registry = Registry(
    "metric", "faceblur_bench.metrics", builtin_modules=("faceblur_bench.metrics.builtin",),
    catalog="faceblur_bench.metrics.catalog",
)
splits: Registry = Registry(
    "split", "faceblur_bench.splits", builtin_modules=("faceblur_bench.data.builtin",)
)
trainers: Registry = Registry(
    "trainer", "faceblur_bench.trainers", builtin_modules=("faceblur_bench.methods.builtin",),
    catalog="faceblur_bench.methods.trainer_catalog",
)
