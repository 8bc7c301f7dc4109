"""Network containment for one analysis: the bridge, the fakenet, host firewall, routing, capture.

A device's only way out is its analysis' own fakenet container.  This
package creates the analysis bridge with the subnet pool fenced off-host
(``bridge``, on the Docker plumbing of ``sandbox.containers``), starts the
fakenet and collects its logs (``fakenet``), fences the analysis bridge off
from the host and every other interface (``containment``), points the
device's default route at the fakenet (``routing``) and captures the bridge
from the host (``capture``).  Installing the fakenet's CA on a device is
device work and lives in ``sandbox.device.trust`` / ``trust_android``.
Nothing here runs at import time.
"""
