"""edgetron.golden: the NumPy golden models, the specification of every result (docs/)."""

from edgetron import require_package_name

require_package_name(__name__, "edgetron.golden")
