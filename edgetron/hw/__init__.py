"""Hardware numbers shared by ``rtl/`` and ``sim/``: each is defined once, here.

One module per hardware unit (the unit's name in every layer). A module holds the unit's
fixed latencies (pipeline depths, command cycles), its buffer words and shape-fit rules,
as integer functions of :class:`edgetron.config.SimParams`. The RTL imports them, builds
its structure from them and asserts at elaboration that the structure has exactly that
latency; the simulator's timing models import the same functions. Agreement between the
RTL and the simulator is still *measured* by the tests (they run the RTL and count); the
shared definitions only stop copies from drifting.

The functions are compiled with Numba (``cache=True``) so that simulator kernels can call
them; Python callers (the RTL's host-side model, the tests) call them directly. Importing
the package installs :class:`edgetron.jitcache.SourcesLocator` first, as ``edgetron.sim``
does, so that a cached function is reused only while every source it embeds is unchanged.
"""

from edgetron import jitcache

jitcache.install()
