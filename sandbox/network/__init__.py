"""Network containment for one analysis: the fakenet, host firewall, routing, capture, trust.

A device's only way out is its analysis' own fakenet container.  This
package starts that fakenet and collects its logs (``fakenet``), fences the
analysis bridge off from the host and every other interface (``containment``),
points the device's default route at the fakenet (``routing``), captures the
bridge from the host (``capture``) and installs the fakenet's CA on the device
(``trust``).  Nothing here runs at import time.
"""
