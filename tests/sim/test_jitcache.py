"""Freshness of the Numba caches (edgetron/jitcache.py): where they live, what invalidates them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from numba.core import caching
from numba.core import config as numba_config

import edgetron.config
import edgetron.golden
from edgetron import jitcache
from edgetron.jitcache import SourcesLocator
from edgetron.sim.units import gemm as sim_gemm

SIM_FILE = sim_gemm.__file__
SIM_DIR, HW_DIR = jitcache.compiled_dirs()


def _probe():
    """A function to hand to the locators (only its first line number is read)."""


@pytest.fixture
def fresh_digest():
    """Forget the process's digest before and after a test that moves the sources."""
    jitcache.sources_digest.cache_clear()
    yield
    jitcache.sources_digest.cache_clear()


def test_numba_cache_dir_is_used(monkeypatch, tmp_path):
    monkeypatch.setattr(numba_config, "CACHE_DIR", str(tmp_path))
    loc = SourcesLocator.from_function(_probe, SIM_FILE)
    numba_own = caching.UserProvidedCacheLocator.from_function(_probe, SIM_FILE)
    assert loc.get_cache_path() == numba_own.get_cache_path()
    assert Path(loc.get_cache_path()).parent == tmp_path


def test_pycache_next_to_the_sources_by_default(monkeypatch):
    monkeypatch.setattr(numba_config, "CACHE_DIR", "")
    loc = SourcesLocator.from_function(_probe, SIM_FILE)
    assert Path(loc.get_cache_path()) == Path(SIM_FILE).parent / "__pycache__"


def test_user_wide_cache_when_the_source_folder_is_not_writable(monkeypatch, tmp_path):
    def unwritable(self):
        raise PermissionError(13, "read-only", self.get_cache_path())

    monkeypatch.setattr(numba_config, "CACHE_DIR", "")
    monkeypatch.setattr(caching.InTreeCacheLocator, "ensure_cache_path", unwritable)
    monkeypatch.setattr(caching.UserWideCacheLocator, "ensure_cache_path", lambda self: None)
    loc = SourcesLocator.from_function(_probe, SIM_FILE)
    assert isinstance(loc._inner, caching.UserWideCacheLocator)
    assert loc.get_cache_path() == caching.UserWideCacheLocator(_probe,
                                                                SIM_FILE).get_cache_path()


def test_only_the_sim_and_hw_packages_are_handled(tmp_path):
    assert SourcesLocator.from_function(_probe, str(tmp_path / "other.py")) is None
    assert SourcesLocator.from_function(_probe, edgetron.config.__file__) is None
    assert SourcesLocator.from_function(_probe, str(HW_DIR / "gemm.py")) is not None


def test_stamp_is_numbas_own_plus_every_kernel_source():
    loc = SourcesLocator.from_function(_probe, SIM_FILE)
    assert loc.get_source_stamp() == (loc._inner.get_source_stamp(), jitcache.sources_digest())
    assert loc.get_disambiguator() == (f"{loc._inner.get_disambiguator()}-"
                                       f"{jitcache.sources_digest()[:12]}")
    names = {(p.parent.name, p.name) for p in jitcache.kernel_sources()}
    assert {("sim", "memory.py"), ("units", "softmax.py"), ("golden", "softmax.py"),
            ("hw", "gemm.py"), ("edgetron", "config.py")} <= names


def test_digest_changes_with_any_kernel_source(tmp_path, monkeypatch, fresh_digest):
    # Copies of the sources: a change to a callee's file or to a golden constant must
    # change the stamp of every kernel, not only of the functions in the changed file.
    for name, src in (("sim", SIM_DIR), ("hw", HW_DIR),
                      ("golden", Path(edgetron.golden.__file__).parent)):
        shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(edgetron.config.__file__, tmp_path / "config.py")
    monkeypatch.setattr(jitcache, "compiled_dirs", lambda: (tmp_path / "sim", tmp_path / "hw"))
    monkeypatch.setattr(edgetron.golden, "__file__", str(tmp_path / "golden" / "__init__.py"))
    monkeypatch.setattr(edgetron.config, "__file__", str(tmp_path / "config.py"))

    def digest() -> str:
        jitcache.sources_digest.cache_clear()
        return jitcache.sources_digest()

    seen = {digest()}
    assert digest() in seen  # nothing changed
    for changed in (tmp_path / "golden" / "softmax.py", tmp_path / "sim" / "units" / "gemm.py",
                    tmp_path / "hw" / "gemm.py", tmp_path / "config.py"):
        changed.write_text(changed.read_text() + "\n# changed\n")
        new = digest()
        assert new not in seen, changed
        seen.add(new)


def _run(cache_dir: Path, body: str) -> list[str]:
    """Run ``body`` in a fresh interpreter with ``NUMBA_CACHE_DIR=cache_dir``; its lines."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    code = "from edgetron import jitcache\n" + textwrap.dedent(body)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300, check=True)
    return out.stdout.split()


def test_an_index_written_under_other_sources_is_recompiled(tmp_path):
    # The whole round trip in NUMBA_CACHE_DIR, each step a new process as in real use.
    use = """
        from edgetron.sim.units import pipeline
        print(jitcache.is_compiled(pipeline.round_shift), pipeline.round_shift(5, 1),
              jitcache.is_compiled(pipeline.round_shift))
    """
    assert _run(tmp_path, use) == ["False", "3", "True"]  # cold: compiled and saved
    assert list(tmp_path.glob("units_*/pipeline.round_shift-*.nbi"))
    assert _run(tmp_path, use) == ["True", "3", "True"]  # warm
    # Another version of any kernel source (sim/, golden/, config.py): the same index no
    # longer matches, so Numba compiles again and overwrites it.
    other = "jitcache.sources_digest = lambda: 'other sources'\n" + textwrap.dedent(use)
    assert _run(tmp_path, other) == ["False", "3", "True"]
    assert _run(tmp_path, use) == ["False", "3", "True"]


def test_install_is_idempotent_and_warns_about_a_locator_override(monkeypatch):
    jitcache.install()
    jitcache.install()
    classes = caching.CacheImpl._locator_classes
    assert classes[0] is SourcesLocator
    assert sum(c.__name__ == "SourcesLocator" for c in classes) == 1
    monkeypatch.setattr(numba_config, "CACHE_LOCATOR_CLASSES", "InTreeCacheLocator",
                        raising=False)
    with pytest.warns(RuntimeWarning, match="edgetron.jitcache.SourcesLocator"):
        jitcache.install()
    monkeypatch.setattr(numba_config, "CACHE_LOCATOR_CLASSES",
                        "edgetron.jitcache.SourcesLocator,InTreeCacheLocator")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jitcache.install()  # named in the override: no warning
    assert classes[0] is SourcesLocator


def test_other_versions_files_are_never_read_and_are_pruned_on_write(tmp_path, monkeypatch):
    # An index of other sources may name a module since renamed: Numba unpickles an index
    # before comparing stamps, so it would raise instead of recompiling. Each version has
    # its own file names; writing removes the function's files of other versions only.
    monkeypatch.setattr(numba_config, "CACHE_DIR", str(tmp_path))
    loc = SourcesLocator.from_function(_probe, SIM_FILE)
    folder = Path(loc.get_cache_path())
    folder.mkdir(parents=True, exist_ok=True)
    inner = loc._inner.get_disambiguator()
    stem = f"test_jitcache._probe-{inner}"
    ours = f"{stem}-{jitcache.sources_digest()[:12]}.py311"
    stale = [f"{stem}-0123456789ab.py311.nbi", f"{stem}-0123456789ab.py311.1.nbc",
             f"{stem}.py311.nbi"]           # written before the digest was in the name
    kept = [f"{ours}.nbi", f"{ours}.1.nbc", f"test_jitcache._probe-{inner}1-x.py311.nbi",
            f"test_jitcache._other-{inner}-0123456789ab.py311.nbi", "notes.txt"]
    for name in stale + kept:
        (folder / name).write_bytes(b"not an index")
    loc.ensure_cache_path()
    assert sorted(p.name for p in folder.iterdir()) == sorted(kept)
