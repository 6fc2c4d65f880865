"""The convolution unit's depthwise mode and what the host needs to drive it.

* :mod:`.model`: the shape check and the stream protocol (host side, no hardware);
* :mod:`.depthwise`: :class:`DepthwiseUnit`, line buffer, window and the column of PEs.

docs/rtl.md ("Depthwise mode") describes the unit; the public names are re-exported here.
"""

from .depthwise import DepthwiseUnit, dw_layouts
from .model import DwCall, check_dw_shape, decode_dw, dw_timing, encode_dw

__all__ = ["DepthwiseUnit", "DwCall", "check_dw_shape", "decode_dw", "dw_layouts",
           "dw_timing", "encode_dw"]
