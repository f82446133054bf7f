"""python -m bench (= spanqa bench): the side-by-side benchmark (bench.run). Sections of their own:
`python -m bench scale` (bench.scale), `python -m bench serving` (bench.serving), `python -m bench conversations`
(follow-up questions, bench.conversation), `python -m bench ingest-scale` (one process against Ray workers, into
both backends, bench.ingest_scale), `python -m bench manuals` (answers on real manuals, leave one manual out,
bench.manuals), `python -m bench sync` (collections that follow their folders, bench.sync), `python -m bench
pdf-pages` (answers checked on their PDF pages, bench.pdf_pages), `python -m bench team` (three collections,
scoped keys: memory, leaks, a soak; bench.team) and `python -m bench soak` (the server under 16
clients and hostile requests for ten minutes, bench.soak)."""

import sys

if sys.argv[1:2] == ["scale"]:
    from bench.scale import main

    sys.exit(main(sys.argv[2:]))
if sys.argv[1:2] == ["serving"]:
    from bench.serving import main

    sys.argv = [f"{sys.argv[0]} serving", *sys.argv[2:]]
    sys.exit(main())
if sys.argv[1:2] == ["conversations"]:
    from bench.conversation import main

    sys.exit(main(sys.argv[2:]))
if sys.argv[1:2] == ["ingest-scale"]:
    from bench.ingest_scale import main

    sys.exit(main(sys.argv[2:]))
if sys.argv[1:2] == ["manuals"]:
    from bench.manuals import main

    sys.exit(main(sys.argv[2:]))
if sys.argv[1:2] == ["sync"]:
    from bench.sync import main

    sys.exit(main(sys.argv[2:]))
if sys.argv[1:2] == ["pdf-pages"]:
    from bench.pdf_pages import main

    sys.exit(main(sys.argv[2:]))
if sys.argv[1:2] == ["team"]:
    from bench.team import main

    sys.exit(main(sys.argv[2:]))
if sys.argv[1:2] == ["soak"]:
    from bench.soak import main

    sys.exit(main(sys.argv[2:]))
from bench.run import main

sys.exit(main())
