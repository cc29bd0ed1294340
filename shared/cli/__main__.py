"""`python -m shared.cli ...` is the `cnnlab` command."""

import sys

from shared.cli.main import main

sys.exit(main())
