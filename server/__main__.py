"""`python -m server ...` is the `segmentd` command."""

import sys

from server.cli import main

sys.exit(main())
