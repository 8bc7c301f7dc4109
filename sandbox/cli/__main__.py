"""``python -m sandbox.cli``: the ``honeyphone`` command."""

import sys

from . import main

sys.exit(main())
