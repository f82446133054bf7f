"""python -m bench: the side-by-side benchmark (see bench.run)."""

import sys

from bench.run import main

sys.exit(main())
