"""Packaging: the wheel ships every module and data file of the mapped folders, each once.

The distribution ``edgetron`` is four repository folders under one package name
(README, "Packaging"): ``edgetron/`` is ``edgetron``, ``golden/``, ``sim/`` and ``rtl/`` are
``edgetron.golden``, ``edgetron.sim`` and ``edgetron.rtl``. ``pyproject.toml`` lists every
package explicitly, so a new subpackage that is not listed would silently be missing from
the wheel; these tests make that an error:

* the package lists of ``pyproject.toml`` match the folders (fast, no build);
* a wheel built offline from the files of a fresh checkout holds every ``.py`` module and
  data file of the four folders under its mapped name, byte for byte, nothing twice and
  nothing else;
* a mapped folder imported under its bare name (``import golden``) fails with an ImportError
  that names the right package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Repository folder -> its package in the distribution (the mapping README describes).
MAPPED = {"edgetron": "edgetron", "golden": "edgetron.golden", "sim": "edgetron.sim",
          "rtl": "edgetron.rtl"}
#: The folders ``import <name>`` must refuse (everything but edgetron/ itself).
BARE = ("golden", "rtl", "sim")
#: Files beside the folders that the build reads (pyproject's ``readme``).
BUILD_INPUTS = ("pyproject.toml", "README.md")


@cache
def source_files() -> tuple[str, ...]:
    """Files of the mapped folders a fresh checkout would hold: tracked plus new, not ignored.

    Relative POSIX paths, e.g. ``golden/softmax.py`` and ``rtl/verilator_waivers.vlt``.
    """
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *MAPPED],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode()
    files = sorted({f for f in out.split("\0") if f and (ROOT / f).is_file()})
    assert any(f.startswith("golden/") for f in files), f"git listed no golden/ files in {ROOT}"
    return tuple(files)


def wheel_name(path: str) -> str:
    """Path of a repository file inside the wheel: ``golden/x.py`` -> ``edgetron/golden/x.py``."""
    folder, _, rest = path.partition("/")
    return MAPPED[folder].replace(".", "/") + "/" + rest


def package_of(folder: str) -> str:
    """Package name of a repository folder: ``sim/units`` -> ``edgetron.sim.units``."""
    top, _, rest = folder.partition("/")
    return ".".join([MAPPED[top], *filter(None, rest.split("/"))])


def pyproject_setuptools() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]


# ---- pyproject.toml against the folders (no build) --------------------------------------------
def test_pyproject_lists_every_package_once_sorted_with_its_folder():
    folders = sorted({str(Path(f).parent.as_posix()) for f in source_files() if f.endswith(".py")})
    no_init = [d for d in folders if f"{d}/__init__.py" not in source_files()]
    assert not no_init, (
        f"folders with Python modules but no __init__.py (setuptools would not ship them): "
        f"{', '.join(no_init)}"
    )
    packages = {package_of(d): d for d in folders}
    cfg = pyproject_setuptools()
    listed = cfg["packages"]
    missing = sorted(set(packages) - set(listed))
    assert not missing, (
        f"pyproject.toml [tool.setuptools] packages misses {', '.join(missing)}: add one line "
        f"per package (sorted) there and in [tool.setuptools.package-dir]"
    )
    extra = sorted(set(listed) - set(packages))
    assert not extra, f"pyproject.toml lists packages with no folder: {', '.join(extra)}"
    twice = sorted(p for p, n in Counter(listed).items() if n > 1)
    assert not twice, f"pyproject.toml lists packages twice: {', '.join(twice)}"
    assert listed == sorted(listed), "keep [tool.setuptools] packages sorted (one per line)"
    mapping = cfg["package-dir"]
    wrong = {p: d for p, d in mapping.items() if packages.get(p) != d}
    assert not wrong, (
        f"pyproject.toml [tool.setuptools.package-dir] maps {wrong}; expected "
        f"{ {p: packages.get(p) for p in wrong} }"
    )
    assert sorted(mapping) == sorted(packages), (
        f"[tool.setuptools.package-dir] must map every package: missing "
        f"{sorted(set(packages) - set(mapping))}"
    )
    assert list(mapping) == sorted(mapping), "keep [tool.setuptools.package-dir] sorted"


# ---- the wheel ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built offline from a copy of the files a fresh checkout would hold.

    The copy keeps the build's own ``build/`` and ``*.egg-info`` out of the repository and
    stale build output out of the wheel. The PEP 517 hook runs in the test's interpreter,
    without build isolation, so nothing is downloaded.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    src, dist = tmp / "src", tmp / "dist"
    for rel in (*source_files(), *BUILD_INPUTS):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    dist.mkdir()
    hook = "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))"
    run = subprocess.run([sys.executable, "-c", hook, str(dist)], cwd=src, capture_output=True,
                         text=True)
    assert run.returncode == 0, (
        f"building the wheel failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    )
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {dist}, got {wheels}"
    return wheels[0]


def test_wheel_holds_every_module_and_data_file_once_under_its_mapped_name(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        twice = sorted(n for n, c in Counter(names).items() if c > 1)
        assert not twice, f"{wheel.name} holds these entries twice: {', '.join(twice)}"
        payload = {n for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
        expected = {wheel_name(f): f for f in source_files()}
        missing = sorted(set(expected) - payload)
        if missing:
            packages = sorted({package_of(str(Path(expected[n]).parent.as_posix()))
                               for n in missing if n.endswith(".py")})
            data = [expected[n] for n in missing if not n.endswith(".py")]
            lines = "\n".join(f"  {expected[n]} -> {n}" for n in missing)
            pytest.fail(
                f"{wheel.name} misses {len(missing)} of {len(expected)} files of the mapped "
                f"folders:\n{lines}\n"
                + (f"packages not shipped: {', '.join(packages)} (list each in "
                   f"[tool.setuptools] packages and package-dir of pyproject.toml)\n"
                   if packages else "")
                + (f"data files not shipped: {', '.join(data)} (add a pattern to "
                   f"[tool.setuptools.package-data])\n" if data else ""),
                pytrace=False,
            )
        unexpected = sorted(payload - set(expected))
        assert not unexpected, (
            f"{wheel.name} holds files that are not the mapped name of a source file (a second "
            f"copy of a folder, or a stray file): {', '.join(unexpected)}"
        )
        stale = [n for n in sorted(expected) if zf.read(n) != (ROOT / expected[n]).read_bytes()]
        assert not stale, f"{wheel.name} holds other contents than the sources: {stale}"


# ---- bare folder names ------------------------------------------------------------------------
@pytest.mark.parametrize("folder", BARE)
def test_bare_folder_import_fails_clearly(folder):
    module = min(p.stem for p in (ROOT / folder).glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"for name in ({folder!r}, {folder + '.' + module!r}):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        print(name, '->', exc)\n"
        "    else:\n"
        "        print(name, '-> imported')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 2, run.stdout
    for line in lines:
        assert f"import edgetron.{folder}, not '{folder}'" in line, (
            f"importing the bare folder name from the repository root must raise an "
            f"ImportError naming edgetron.{folder}; got: {line}"
        )
