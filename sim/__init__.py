"""edgetron.sim: the Numba cycle-approximate simulator of the rtl/ hardware (docs/simulator.md)."""

import hashlib
import os
from pathlib import Path

__all__ = ["refresh_jit_cache"]


def _kernel_sources() -> list[Path]:
    """Every source file whose code or constants the package's compiled kernels embed.

    ``sim/*.py``; the golden package, whose constants the kernels read as globals
    (``EXP_BITS``, ``RECIP_K``, ``INT32_MAX``, ...: Numba freezes a global into the
    compiled code); and ``edgetron/config.py`` (``SimParams``).
    """
    import edgetron.config
    import edgetron.golden

    here = Path(__file__).resolve().parent
    golden = Path(edgetron.golden.__file__).resolve().parent
    return [*sorted(here.glob("*.py")), *sorted(golden.glob("*.py")),
            Path(edgetron.config.__file__).resolve()]


def refresh_jit_cache() -> None:
    """Drop the package's Numba on-disk caches when a source they depend on has changed.

    ``@njit(cache=True)`` keys a cached function on its *own* file only, but compiled code
    embeds the callees it calls from other files (``sim.memory`` calls ``sim.systolic``,
    ``sim.engine`` calls everything) and the values of the globals it reads (the golden
    constants); after such a file changes the cache would silently run the old code. A
    SHA-256 of every source of :func:`_kernel_sources` is kept next to the caches
    (``sim/__pycache__/edgetron-jit-sources.sha256``); when it differs, the cache index
    files are removed and Numba recompiles. Runs once, at the import of this package,
    before any of its modules compiles or loads a cache. Unwritable locations are left
    alone (Numba then does not cache either).
    """
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for src in _kernel_sources():
        digest.update(f"{src.parent.name}/{src.name}".encode())
        digest.update(src.read_bytes())
    cache = here / "__pycache__"
    stamp = cache / "edgetron-jit-sources.sha256"
    want = digest.hexdigest()
    try:
        if stamp.read_text(encoding="ascii") == want:
            return
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for pattern in ("*.nbi", "*.nbc"):
            for f in cache.glob(pattern):
                f.unlink(missing_ok=True)
        tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
        tmp.write_text(want, encoding="ascii")
        os.replace(tmp, stamp)
    except OSError:
        pass


refresh_jit_cache()
