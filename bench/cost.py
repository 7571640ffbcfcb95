#!/usr/bin/env python3
"""`make bench-cost`: instructions per request of the decision core, by request kind.

Runs core/examples/decision_cost (native, release) under `valgrind --tool=callgrind`, counting only
the measured loop. Instruction counts do not depend on machine noise: the same binary and
inputs give the same figure, so a regression shows in review. Standard library only.

`python3 bench/cost.py [kind...]` measures only those kinds (default: every kind).
"""

import os
import re
import subprocess
import sys

KINDS = ["valid-token", "distinct-tokens", "missing-token", "invalid-token", "api-key",
         "client", "none-path", "optional-anonymous", "browser-redirect",
         # A valid token and a 1 KiB urlencoded body, the body read for credential fields.
         "form-post",
         # An identity provider's tokens, keys inline: a cache hit, then full verifications.
         "rs256-token", "rs256-distinct", "es256-distinct", "es384-distinct", "eddsa-distinct",
         # A rule with conditions (audience, scope, two claims): cache hits, then new tokens.
         "conditions-token", "conditions-distinct",
         # Browser sign-in configured: the RS256 token in the session cookie, then as Bearer.
         "session-token", "session-bearer"]
ITERATIONS = 1000
# Full verifications of asymmetric signatures cost millions of instructions (and minting the
# distinct RSA tokens, outside the count, takes a while under valgrind): fewer suffice.
ITERATIONS_OF = {"rs256-distinct": 100, "es256-distinct": 100, "es384-distinct": 100,
                 "eddsa-distinct": 100}


def main():
    binary = os.environ.get("DECISION_COST", "target/cost/examples/decision_cost")
    if not os.path.exists(binary):
        sys.exit(f"bench-cost: {binary} is missing (make bench-cost builds it)")
    print(f"{'request kind':<22}{'instructions/request':>22}")
    only = sys.argv[1:]
    for kind in only or KINDS:
        iterations = ITERATIONS_OF.get(kind, ITERATIONS)
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
             "--toggle-collect=*measured*", binary, kind, str(iterations)],
            capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"bench-cost: {kind} failed:\n{out.stderr}")
        collected = int(re.search(r"Collected : (\d+)", out.stderr).group(1))
        print(f"{kind:<22}{collected / iterations:>22,.0f}")


if __name__ == "__main__":
    main()
