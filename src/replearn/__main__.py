"""Allow ``python -m replearn``."""

import sys

from replearn.cli import main

sys.exit(main())
