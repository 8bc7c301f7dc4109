"""Entry point: ``python3 -m fakenetd``."""

import sys

from .daemon import main

sys.exit(main())
