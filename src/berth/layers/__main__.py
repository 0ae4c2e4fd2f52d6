"""`python -m berth.layers apply|tar|diff|changes ...`: the layer code from a shell (benchmarks, debugging)."""

from __future__ import annotations

import argparse
import sys

from berth.errors import BerthError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m berth.layers")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("apply", help="apply a layer tar (plain/gzip/zstd; '-' = stdin) to DEST")
    a.add_argument("tar")
    a.add_argument("dest")
    a.add_argument("--whiteouts", choices=["delete", "overlay"], default="delete")
    t = sub.add_parser("tar", help="deterministic tar of ROOT to OUT ('-' = stdout)")
    t.add_argument("root")
    t.add_argument("out")
    t.add_argument("--compress", choices=["none", "gzip", "zstd"], default="none")
    d = sub.add_parser("diff", help="layer tar turning OLD ('-' = empty) into NEW")
    d.add_argument("old")
    d.add_argument("new")
    d.add_argument("out")
    c = sub.add_parser("changes", help="docker-diff list between OLD ('-' = empty) and NEW")
    c.add_argument("old")
    c.add_argument("new")
    args = p.parse_args(argv)

    from berth import layers

    try:
        if args.cmd == "apply":
            src = sys.stdin.buffer if args.tar == "-" else open(args.tar, "rb")  # noqa: SIM115
            with src:
                r = layers.apply_layer(src, args.dest, whiteouts=args.whiteouts)
            print(f"{r.diff_id} {r.size}")
        elif args.cmd in ("tar", "diff"):
            out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: SIM115
            with out:
                w = layers.compressor(out, getattr(args, "compress", "none"))
                if args.cmd == "tar":
                    layers.tar_directory(args.root, w)
                else:
                    layers.diff_trees(None if args.old == "-" else args.old, args.new, w)
                w.close()
        else:
            for kind, path in layers.changes_trees(None if args.old == "-" else args.old, args.new):
                print(kind, path)
    except BerthError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
