"""``tidings policy check [FILE]`` and ``tidings policy ropa [FILE]``: no database needed."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import PolicyError, load_policy
from .summary import print_summary

EXAMPLE_POLICY = Path(__file__).with_name("example.toml")


def configured_policy_path() -> Path:
    """TIDINGS_POLICY, or the bundled example policy (what settings.py uses too)."""
    return Path(os.environ.get("TIDINGS_POLICY") or EXAMPLE_POLICY)


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tidings policy", description="Work with policy.toml.")
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="validate a policy file and print a summary")
    check.add_argument("file", nargs="?", type=Path, help="default: $TIDINGS_POLICY")
    check.add_argument("-q", "--quiet", action="store_true", help="print nothing when valid")
    ropa = sub.add_parser("ropa", help="print the Art. 30 record of processing as CSV")
    ropa.add_argument("file", nargs="?", type=Path, help="default: $TIDINGS_POLICY")
    ropa.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    args = parser.parse_args(argv)

    path = args.file or configured_policy_path()
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 1

    if args.action == "check":
        if not args.quiet:
            print_summary(policy)
        return 0

    from .ropa import write_ropa_csv

    if args.output:
        try:
            with args.output.open("w", encoding="utf-8", newline="") as fp:
                write_ropa_csv(policy, fp)
        except OSError as exc:
            print(
                f"tidings policy ropa: cannot write {args.output}: {exc.strerror}", file=sys.stderr
            )
            return 1
    else:
        write_ropa_csv(policy, sys.stdout)
    return 0
