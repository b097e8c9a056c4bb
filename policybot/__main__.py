"""``python -m policybot`` runs the ``policybot`` command line."""

import sys

from policybot.cli import main

sys.exit(main())
