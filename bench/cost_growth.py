#!/usr/bin/env python3
"""`make cost-growth` (part of `make test`): the decision's cost grows linearly with the request.

For every request kind of core/examples/decision_cost, one request is made bigger four ways — a
path of `/a` segments, a path of `%2F`, `;`, `//` and `..` segments, a query of escapes and
separators, a `Cookie` header of small cookies — and a kind with a form body (form-post) also
by its body, hostile units repeated (`%25%20`, `a=1&`, `\r\n--aaaaaaaaaaaa`,
`--XyZ\r\nA: b\r\n\r\n`) in an urlencoded and two multipart layouts, read through the filter's
body step — first to SMALL bytes, then to LARGE bytes, and the instruction count under
callgrind is compared: the large request may cost at most BOUND times the small one. A linear
decision stays under LARGE / SMALL (60) whatever its fixed cost; a quadratic one goes to about
(LARGE / SMALL)^2 (3,600). Instruction counts do not depend on the load of the machine, so
this is a test of growth, not of time: it cannot fail because the machine is busy.

`python3 bench/cost_growth.py [kind...]` measures only those kinds (default: every kind).

One valgrind run for everything: `--dump-after='*measured*'` writes one dump per measured call,
and `callgrind_annotate --inclusive=yes` reads the cost of that call from each. Standard library
only.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

SMALL = 1024
LARGE = 60 * 1024
BOUND = 100


def measured_cost(dump):
    """The inclusive instruction count of `measured` in one callgrind dump."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", dump],
                         capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        found = re.match(r"\s*([\d,]+) .*decision_cost::measured", line)
        if found:
            return int(found.group(1).replace(",", ""))
    sys.exit(f"cost-growth: no decision_cost::measured in {dump}:\n{out.stdout}")


def main():
    binary = os.environ.get("DECISION_COST", "target/cost/examples/decision_cost")
    if not os.path.exists(binary):
        sys.exit(f"cost-growth: {binary} is missing (make cost-growth builds it)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cost-growth-") as scratch:
        out_file = os.path.join(scratch, "callgrind.out")
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
             "--dump-after=*measured*", binary, "--growth", str(SMALL), str(LARGE),
             *sys.argv[1:]],
            capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"cost-growth: decision_cost failed:\n{run.stderr}")
        calls = [line.split(" ", 3) for line in run.stdout.splitlines()]
        dumps = sorted((f for f in os.listdir(scratch) if re.fullmatch(r"callgrind\.out\.\d+", f)),
                       key=lambda f: int(f.rsplit(".", 1)[1]))
        if len(dumps) != len(calls):
            sys.exit(f"cost-growth: {len(calls)} measured calls but {len(dumps)} dumps")
        costs = {}
        outcomes = {}
        for (kind, growth, size, outcome), dump in zip(calls, dumps):
            costs[(kind, growth, int(size))] = measured_cost(os.path.join(scratch, dump))
            outcomes[(kind, growth, int(size))] = outcome
    kinds = list(dict.fromkeys(kind for kind, _, _, _ in calls))
    growths = {kind: list(dict.fromkeys(g for k, g, _, _ in calls if k == kind)) for kind in kinds}

    print(f"Instructions of one decision, {LARGE // 1024} KiB request / {SMALL // 1024} KiB "
          f"request (callgrind): at most {BOUND}x allowed (linear stays under {LARGE // SMALL}x)")
    print(f"{'request kind':<20}{'growth':<13}{'1 KiB':>14}{'60 KiB':>16}{'ratio':>11}")
    failures = []
    for kind in kinds:
        for growth in growths[kind]:
            small = costs[(kind, growth, SMALL)]
            large = costs[(kind, growth, LARGE)]
            ratio = large / max(small, 1)
            mark = "  > bound" if ratio > BOUND else ""
            print(f"{kind:<20}{growth:<13}{small:>14,}{large:>16,}{ratio:>10,.1f}x{mark}")
            if ratio > BOUND:
                failures.append(f"{kind}, {growth}: {ratio:,.0f}x ({small:,} instructions at "
                                f"{SMALL} bytes, {large:,} at {LARGE} bytes)")
    outcome_row = ", ".join(f"{k}: {outcomes[(k, 'path', SMALL)]}" for k in kinds)
    print(f"Outcomes (1 KiB path): {outcome_row}")
    # A refused body is read only up to the refusal: its cost would say nothing.
    failures += [f"{k}, {g}, {size} bytes: the body was refused"
                 for (k, g, size), outcome in outcomes.items() if outcome == "refused"]
    print(f"cost-growth: {len(kinds)} kinds, {sum(map(len, growths.values()))} growths, "
          f"{time.monotonic() - started:.1f} s")
    if failures:
        print(f"cost-growth: FAILED, cost grows faster than linearly ({len(failures)}):")
        for failure in failures:
            print(f"  {failure}")
        sys.exit(1)
    print("cost-growth: every kind grows linearly")


if __name__ == "__main__":
    main()
