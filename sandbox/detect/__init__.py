"""Canary detection engine: decode outgoing bytes recursively and match needles.

Pure logic over byte buffers (no capture or flow I/O).  Build a
:class:`Scanner` once from the canary forms (:class:`Needle`), then call
:meth:`Scanner.scan` on each buffer to get :class:`Hit` objects.  See
``scan.py`` for the decoding model, chain names and case rules.
"""

from .scan import Hit, Needle, Scanner, ScanStats

__all__ = ["Hit", "Needle", "Scanner", "ScanStats"]
