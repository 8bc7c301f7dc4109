"""Honeyphone: a behavioral sandbox that catches phone firmware stealing personal data.

The import package is ``sandbox``; the distribution and CLI are ``honeyphone``.
Layers point one way: API servicers -> core (pipeline, canaries, clock, detection)
-> adapters (docker, adb, capture).  Nothing here runs at import time.
"""

__version__ = "0.1.0"
