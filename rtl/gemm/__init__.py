"""The GEMM unit (``A @ W + bias``, int32 or requantized int8) and everything the host
needs to drive it.

* :mod:`.model`: buffer limits, the shape check and the timing model (host side, no
  hardware);
* :mod:`.codec`: the stream protocol, matrices to beats and back;
* :mod:`.unit`: :class:`GemmUnit`, buffers, controller and output stage;
* :mod:`.core`, :mod:`.ws_core`, :mod:`.os_core`: the weight- and output-stationary
  compute cores around the systolic array.

docs/rtl.md describes the unit; the public names are re-exported here.
"""

from .codec import (
    GemmCall,
    GemmCommand,
    decode_gemm,
    decode_gemm_command,
    decode_gemm_operands,
    encode_gemm,
)
from .model import (
    OUT_BITS,
    GemmLimits,
    check_config,
    check_shape,
    gemm_limits,
    gemm_timing,
    shape_fits,
)
from .os_core import OsCore
from .unit import GemmUnit
from .ws_core import WsCore

__all__ = [
    "OUT_BITS",
    "GemmCall",
    "GemmCommand",
    "GemmLimits",
    "GemmUnit",
    "OsCore",
    "WsCore",
    "check_config",
    "check_shape",
    "decode_gemm",
    "decode_gemm_command",
    "decode_gemm_operands",
    "encode_gemm",
    "gemm_limits",
    "gemm_timing",
    "shape_fits",
]
