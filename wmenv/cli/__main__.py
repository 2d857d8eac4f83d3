"""``python -m wmenv.cli ...`` is the ``wmenv`` command."""

import sys

from wmenv.cli import main

sys.exit(main())
