"""Subcommands of the ``edgetron`` command line; one module per subcommand.

Every module here defines ``register(subparsers)`` (see :mod:`edgetron.cli`). The help
texts of the arguments several subcommands share are defined here, once.
"""

from edgetron.config import DEFAULT_PRESET, PRESETS
from edgetron.workload import MODELS

__all__ = ["CONFIG_HELP", "MODEL_HELP"]

#: Help of a MODEL argument: every source ``edgetron.workload.load_workload`` reads.
MODEL_HELP = (f"preset ({', '.join(MODELS)}), trace JSON file, SCALE-Sim CSV or ONNX model "
              "(.onnx)")
#: Help of ``--config``.
CONFIG_HELP = f"preset ({', '.join(PRESETS)}) or TOML file; default {DEFAULT_PRESET}"
