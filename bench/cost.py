#!/usr/bin/env python3
"""`make bench-cost`: instructions per request of the decision core, by request kind.

Runs core/examples/decision_cost (native, release) under `valgrind --tool=callgrind`, counting only
the measured loop. Instruction counts do not depend on machine noise: the same binary and
inputs give the same figure, so a regression shows in review. Standard library only.
"""

import os
import re
import subprocess
import sys

KINDS = ["valid-token", "distinct-tokens", "missing-token", "invalid-token", "api-key",
         "client", "none-path", "optional-anonymous", "browser-redirect"]
ITERATIONS = 1000


def main():
    binary = os.environ.get("DECISION_COST", "target/cost/examples/decision_cost")
    if not os.path.exists(binary):
        sys.exit(f"bench-cost: {binary} is missing (make bench-cost builds it)")
    print(f"{'request kind':<22}{'instructions/request':>22}")
    for kind in KINDS:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
             "--toggle-collect=*measured*", binary, kind, str(ITERATIONS)],
            capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"bench-cost: {kind} failed:\n{out.stderr}")
        collected = int(re.search(r"Collected : (\d+)", out.stderr).group(1))
        print(f"{kind:<22}{collected / ITERATIONS:>22,.0f}")


if __name__ == "__main__":
    main()
