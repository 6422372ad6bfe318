"""``python -m immunopet`` runs the command line."""

import sys

from immunopet.cli import main

sys.exit(main())
