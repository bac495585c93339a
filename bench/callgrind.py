"""``python -m bench.callgrind PHASE N``: one in-process phase for an instruction count.

Runs the set-up of ``python -m bench.inprocess PHASE N`` as usual, then its timed part
inside ``operator.call``, so that callgrind started with
``--toggle-collect=_operator_call`` counts the instructions of the timed part alone.
It prints the number of requests of that part. Instruction counts do not depend on
what else the machine is doing, which timings on a shared machine do:

    valgrind --tool=callgrind --cache-sim=no --toggle-collect=_operator_call \\
        --callgrind-out-file=/dev/null python -m bench.callgrind c 300 --logs

"Collected" in valgrind's summary, divided by the printed count, is the instructions
per request. Use ``PYTHONHASHSEED=0`` to compare two trees.
"""

from __future__ import annotations

import asyncio
import operator
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import inprocess


def main() -> None:
    args = inprocess.build_parser().parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/callgrind.sqlite3"
    driver = inprocess.Driver(url, logs=args.logs)
    loop = asyncio.new_event_loop()
    requests, work = loop.run_until_complete(
        inprocess.prepare(driver, args.phase, args.n, args.concurrency)
    )
    operator.call(loop.run_until_complete, work())
    print(requests)


if __name__ == "__main__":
    main()
