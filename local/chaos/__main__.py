"""`python -m local.chaos --seed 1 --payments 200`: exit status 1 if any invariant fails."""

import argparse
import sys

from local.chaos.run import format_report, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m local.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    out = sys.stdout
    report = run(args.seed, args.payments, args.concurrency)
    out.write(format_report(report) + "\n")
    return 0 if report.holds else 1


raise SystemExit(main())
