"""Freshness of the Numba on-disk caches of the simulator and the shared hardware numbers.

``@njit(cache=True)`` stores a compiled function in an index file (``*.nbi``) and data
files (``*.nbc``) and reuses them while the index's *source stamp* matches. Numba's stamp
is a hash of the function's **own** file only, but the compiled code embeds the callees it
calls from other files (``sim.tiling`` calls ``sim.units.gemm``, ``sim.engine`` calls
everything) and the values of the globals it reads (golden's ``EXP_BITS``, ``RECIP_K``,
``INT32_MAX``, ...: Numba freezes a global into the compiled code). After such a file
changes, Numba alone would run the old code: stale cycle counts, silently.

:class:`SourcesLocator` closes that gap without touching any file. Numba asks each class
of its locator list, in order, for the cache of a function; this one answers for the
functions of ``sim/`` and ``edgetron/hw/`` only (:func:`compiled_dirs`), by asking Numba's
own locators in Numba's own order and wrapping the first that accepts the function, so the
cache lives exactly where Numba puts it:

* ``$NUMBA_CACHE_DIR/sim_<sha1 of the sim folder>/`` when ``NUMBA_CACHE_DIR`` is set;
* else ``sim/__pycache__/`` next to the sources, when that folder is writable;
* else the user-wide cache, ``<user cache dir>/numba/sim_<sha1 of the sim folder>/``
  (``~/.cache/numba/...`` on Linux).

It adds two things to what Numba does. The stamp becomes Numba's own stamp plus a SHA-256
of every source the kernels depend on (:func:`kernel_sources`), so an index written under
other sources no longer matches and Numba recompiles. And the file names carry the first
12 hex digits of that digest (:meth:`SourcesLocator.get_disambiguator`): Numba unpickles an
index whole before it compares stamps, so an index of other sources that names a module
since renamed (a golden constants class) would raise instead of being ignored; with its own
names, another version's index is never read. When a function's compiled code is written,
its files of other versions are removed (:meth:`SourcesLocator.ensure_cache_path`), so the
folder keeps one version per function, as Numba's own overwriting would. The cost is one
hash of the sources (about 500 KB) per process, a few milliseconds, when the first
kernel's cache is set up.

:func:`install` puts the locator first in Numba's list; ``edgetron.sim`` calls it when
the package is imported, before any of its modules defines a kernel, and so does
``edgetron.hw``. Setting
``NUMBA_CACHE_LOCATOR_CLASSES`` replaces Numba's list, this locator included; name
``edgetron.jitcache.SourcesLocator`` first in it to keep the check (a warning says
so otherwise).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import warnings
from pathlib import Path

from numba.core import caching
from numba.core import config as numba_config

__all__ = [
    "SourcesLocator",
    "compiled_dirs",
    "install",
    "is_compiled",
    "kernel_sources",
    "sources_digest",
]



@functools.cache
def _package_dir(name: str) -> Path:
    """The folder of package ``name`` (found without importing it: ``edgetron.sim`` imports
    this module first)."""
    spec = importlib.util.find_spec(name)
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def compiled_dirs() -> tuple[Path, ...]:
    """The folders whose functions :class:`SourcesLocator` answers for: the simulator
    (``edgetron.sim``) and the hardware numbers it shares with the RTL (``edgetron.hw``)."""
    return _package_dir("edgetron.sim"), _package_dir("edgetron.hw")


def kernel_sources() -> list[Path]:
    """Every source file whose code or constants the package's compiled kernels embed.

    The sources of :func:`compiled_dirs`; the golden package, whose constants the kernels
    read as globals; and ``edgetron/config.py`` (``SimParams``).
    """
    import edgetron.config
    import edgetron.golden

    dirs = (*compiled_dirs(), Path(edgetron.golden.__file__).resolve().parent)
    return [*(src for d in dirs for src in sorted(d.rglob("*.py"))),
            Path(edgetron.config.__file__).resolve()]


@functools.cache
def sources_digest() -> str:
    """SHA-256 (hex) of the names and contents of :func:`kernel_sources`, once per process."""
    digest = hashlib.sha256()
    for src in kernel_sources():
        digest.update(f"{src.parent.name}/{src.name}".encode())  # e.g. units/gemm.py
        digest.update(src.read_bytes())
    return digest.hexdigest()


class SourcesLocator(caching._CacheLocator):
    """Numba's cache location for a ``sim/`` function, stamped with every kernel source.

    Parameters
    ----------
    inner : numba.core.caching._CacheLocator
        The locator Numba itself chose for the function; its folder, disambiguator and
        stamp are kept, and :func:`sources_digest` is added to the stamp.
    """

    def __init__(self, inner: caching._CacheLocator, py_func=None) -> None:
        self._inner = inner
        # Numba names the function's files "<module>.<qualname>-<disambiguator>.py<ver>...".
        qualname = getattr(py_func, "__qualname__", "").replace("<", "").replace(">", "")
        module = getattr(py_func, "__module__", "").rsplit(".", 1)[-1]
        self._stem = f"{module}.{qualname}-{inner.get_disambiguator()}"

    @classmethod
    def from_function(cls, py_func, py_file):
        """The wrapped locator for a function of :func:`compiled_dirs`, else None."""
        path = Path(py_file).resolve()
        if not any(path.is_relative_to(d) for d in compiled_dirs()):
            return None
        for other in caching.CacheImpl._locator_classes:
            if other is cls:
                continue
            inner = other.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner, py_func)
        return None

    def ensure_cache_path(self) -> None:
        """Create the cache folder and check that it is writable (Numba's own check), then
        remove this function's files of other source versions (called before each write,
        so that the folder keeps one version per function, as Numba's own overwriting does).
        """
        self._inner.ensure_cache_path()
        ours = f"{self._stem}-{sources_digest()[:12]}."
        for path in Path(self.get_cache_path()).iterdir():
            name = path.name
            # This function's files: "<stem>-<digest>.py..." (or "<stem>.py..." of versions
            # before the digest was in the name), other than this version's.
            if (name.endswith((".nbi", ".nbc")) and not name.startswith(ours)
                    and (name.startswith(f"{self._stem}-") or name.startswith(f"{self._stem}.py"))):
                path.unlink(missing_ok=True)

    def get_cache_path(self) -> str:
        """The folder Numba chose: ``NUMBA_CACHE_DIR``, ``__pycache__`` or the user cache."""
        return self._inner.get_cache_path()

    def get_disambiguator(self) -> str:
        """Numba's disambiguator (the function's first line number) and the first 12 hex
        digits of :func:`sources_digest`.

        Each version of the sources has its own file names: Numba unpickles an index
        whole before it compares stamps, so an index written by other sources that name a
        module since renamed (a golden constants class, say) would fail to load instead of
        being ignored. Files of other versions are never read, and are removed when this
        version writes (:meth:`ensure_cache_path`).
        """
        return f"{self._inner.get_disambiguator()}-{sources_digest()[:12]}"

    def get_source_stamp(self) -> tuple:
        """Numba's stamp of the function's own file, and :func:`sources_digest`."""
        return self._inner.get_source_stamp(), sources_digest()


def install() -> None:
    """Put :class:`SourcesLocator` first in Numba's list of cache locators (idempotent).

    Warns
    -----
    RuntimeWarning
        ``NUMBA_CACHE_LOCATOR_CLASSES`` replaces that list without naming the locator.
    """
    classes = caching.CacheImpl._locator_classes
    # A reloaded module defines a new class object: drop any earlier copy by name.
    classes[:] = [c for c in classes if c.__qualname__ != SourcesLocator.__qualname__
                  or c.__module__ != SourcesLocator.__module__]
    classes.insert(0, SourcesLocator)
    override = getattr(numba_config, "CACHE_LOCATOR_CLASSES", "")
    name = f"{__name__}.{SourcesLocator.__qualname__}"
    if override and name not in override:
        warnings.warn(
            f"NUMBA_CACHE_LOCATOR_CLASSES replaces Numba's cache locators: name {name} "
            "first in it, or cached edgetron.sim kernels are checked against their own "
            "source file only and can be stale after a change to another one",
            RuntimeWarning, stacklevel=2)


def is_compiled(kernel) -> bool:
    """Whether Numba's on-disk cache holds a fresh compiled version of ``kernel``.

    Parameters
    ----------
    kernel : numba dispatcher
        An ``@njit(cache=True)`` function.

    Returns
    -------
    bool
        True when its cache index is present, of this Numba version and of the current
        source stamp (Numba's own test, so False means that the next call compiles);
        also True without a cache, or with a Numba whose cache internals differ: nothing
        is known to be missing.
    """
    try:
        index = kernel._cache._cache_file._load_index()
    except AttributeError:
        return True
    except Exception:  # an unreadable index: the next call compiles
        return False
    return bool(index)
