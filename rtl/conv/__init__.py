"""The convolution units and what the host needs to drive them.

* :mod:`.dense`: :class:`ConvUnit`, conv2d bands on the weight-stationary array;
  :mod:`.im2col`: its compute core, the ``ws`` core with an im2col A address;
  :mod:`.dense_model`: its call, shape check, stream protocol and timing as data;
* :mod:`.model`: the depthwise mode's shape check and stream protocol (host side);
* :mod:`.depthwise`: :class:`DepthwiseUnit`, line buffer, window and the column of PEs.

docs/rtl.md ("Depthwise mode") describes the unit; the public names are re-exported here.
"""

from .dense import ConvUnit, conv_layouts, conv_limits
from .dense_model import ConvCall, check_conv_call, conv_timing, decode_conv, encode_conv
from .depthwise import DepthwiseUnit, dw_layouts
from .model import DwCall, check_dw_shape, decode_dw, dw_timing, encode_dw

__all__ = ["ConvCall", "ConvUnit", "DepthwiseUnit", "DwCall", "check_conv_call",
           "check_dw_shape", "conv_layouts", "conv_limits", "conv_timing", "decode_conv",
           "decode_dw", "dw_layouts", "dw_timing", "encode_conv", "encode_dw"]
