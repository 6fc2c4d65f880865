"""edgetron: an integer-only edge-AI accelerator, as golden models, RTL and a simulator.

Packaging: the top-level folders ``golden/``, ``sim/`` and ``rtl/`` of the repository are
the subpackages ``edgetron.golden``, ``edgetron.sim`` and ``edgetron.rtl`` (pyproject.toml
maps them). Each refuses to be imported under its bare folder name
(:func:`require_package_name`): ``import golden`` from the repository root would
otherwise load a second copy of every module and class.
"""

__version__ = "0.1.0"


def require_package_name(name: str, expected: str) -> None:
    """Raise ImportError unless a mapped folder is being imported as ``expected``.

    Parameters
    ----------
    name : str
        The importing package's ``__name__``.
    expected : str
        Its name inside the distribution, e.g. ``"edgetron.golden"``.
    """
    if name != expected:
        folder = expected.rsplit(".", 1)[-1]
        raise ImportError(
            f"the {folder}/ folder is the package {expected}: import {expected}, not "
            f"{name!r} (pyproject.toml maps the folder; install edgetron, e.g. "
            "'pip install -e .', and import it by that name)"
        )
