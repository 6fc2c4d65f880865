"""The FPGA flow: place-and-routed resources and Fmax of every unit (docs/fpga.md).

``edgetron fpga`` runs it from the command line. Modules:

- :mod:`.targets`: the devices (ECP5, iCE40, Gowin, a Xilinx synthesis estimate);
- :mod:`.wrapper`: the four-pin wrapper that keeps a unit's logic live;
- :mod:`.tools`: the YoWASP tools, run with progress and a time limit;
- :mod:`.reports`: reading Yosys and nextpnr output;
- :mod:`.flow`: one unit on one target, end to end;
- :mod:`.fusesoc`: a FuseSoC core file beside the exported Verilog.
"""

from .flow import (
    DEFAULT_TIMEOUT,
    FpgaResult,
    format_result,
    run_component,
    run_unit,
    synth_component,
)
from .targets import GOWIN_PARTS, Target, get_target, target_names
from .tools import FitError, FpgaFlowError, package_versions

__all__ = ["DEFAULT_TIMEOUT", "GOWIN_PARTS", "FitError", "FpgaFlowError", "FpgaResult",
           "Target", "format_result", "get_target", "package_versions", "run_component",
           "run_unit", "synth_component", "target_names"]
