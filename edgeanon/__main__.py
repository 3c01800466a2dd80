"""`python -m edgeanon` runs the CLI."""

import sys

from edgeanon.cli import main

sys.exit(main())
