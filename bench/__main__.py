"""python -m bench: the side-by-side benchmark (see bench.run); `python -m bench scale`: the scale section
(see bench.scale)."""

import sys

if sys.argv[1:2] == ["scale"]:
    from bench.scale import main

    sys.exit(main(sys.argv[2:]))
from bench.run import main

sys.exit(main())
