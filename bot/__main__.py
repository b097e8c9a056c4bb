"""``python -m bot`` runs the ``policybot`` command line."""

import sys

from bot.cli import main

sys.exit(main())
