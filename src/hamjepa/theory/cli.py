"""``hamjepa theory [--out DIR] [--seed S] [--dim D] [--budget C]``: numerical checks of docs/spec.md §J."""

from __future__ import annotations

import argparse
import sys


def _theory(args: argparse.Namespace) -> int:
    from hamjepa.theory.checks import run_all_checks
    from hamjepa.theory.report import format_markdown, write_report

    try:
        rows = run_all_checks(dim=args.dim, budget=args.budget, seed=args.seed)
    except ValueError as exc:
        print(f"theory: {exc}", file=sys.stderr)
        return 2
    print(format_markdown(rows))
    if args.out:
        paths = write_report(rows, args.out, {"dim": args.dim, "budget": args.budget, "seed": args.seed})
        print(f"wrote {paths['json']} and {paths['markdown']}")
    return 0 if all(r["passed"] for r in rows) else 1


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``theory`` command on ``subparsers``."""
    p = subparsers.add_parser(
        "theory",
        help="numerically verify the Section-3 / Appendix-A results (docs/spec.md §J)",
        description="Runs every check (minimax covariance, max entropy, price of isotropy, metric isotropy, "
        "Gibbs lift, SPD cone, regret blow-up, non-identifiability, symplectic facts, anti-collapse lemmas), "
        "prints a Markdown table and exits 1 if any check fails.",
    )
    p.add_argument("--out", default=None, help="directory for theory.json and theory.md (default: print only)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random matrices and samples (default 0)")
    p.add_argument("--dim", type=int, default=6, help="dimension d of H (>= 2; default 6)")
    p.add_argument("--budget", type=float, default=2.0, help="energy budget c (> 0; default 2)")
    p.set_defaults(func=_theory)
