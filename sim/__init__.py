"""edgetron.sim: the Numba cycle-approximate simulator of the rtl/ hardware (docs/simulator.md).

Importing the package installs :class:`edgetron.jitcache.SourcesLocator` before any of
its modules defines a kernel, so that a cached kernel is reused only while every source it
embeds is unchanged.
"""

from edgetron import jitcache, require_package_name

require_package_name(__name__, "edgetron.sim")
jitcache.install()
