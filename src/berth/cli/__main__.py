"""`python -m berth.cli ...` runs the berth CLI."""

import sys

from berth.cli.main import main

sys.exit(main())
