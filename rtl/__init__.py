"""edgetron.rtl: the Amaranth hardware units, bit-exact with golden (docs/rtl.md)."""

from edgetron import require_package_name

require_package_name(__name__, "edgetron.rtl")
