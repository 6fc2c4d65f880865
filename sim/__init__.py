"""edgetron.sim: the Numba cycle-approximate simulator of the rtl/ hardware (docs/simulator.md).

Importing the package installs :class:`edgetron.sim.jitcache.SourcesLocator` before any of
its modules defines a kernel, so that a cached kernel is reused only while every source it
embeds is unchanged.
"""

from . import jitcache

jitcache.install()
