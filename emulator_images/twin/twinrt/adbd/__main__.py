"""``python3 -m twinrt.adbd``: run the device's ADB daemon (see :mod:`.main`)."""

import sys

from .main import main

sys.exit(main())
