"""`python -m dlforge` runs the command-line interface."""

import sys

from dlforge.cli import main

sys.exit(main())
