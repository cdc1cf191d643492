"""``python -m phaze`` runs the command line."""

import sys

from phaze.cli import main

sys.exit(main())
