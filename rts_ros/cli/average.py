"""rts-average DIR DIR... --output OUT: the mean of several weights folders of one network (a "model soup")."""
from __future__ import annotations

import argparse
import sys

from rts_ros.errors import RTSError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rts-average",
        description="Average the rts networks of two or more weights folders (copies of one network trained on "
                    "from the same start, e.g. with other seeds) into a new weights folder.")
    parser.add_argument("inputs", nargs="+", metavar="DIR", help="weights folders (rts.json + rts.safetensors)")
    parser.add_argument("--output", "-o", required=True, metavar="OUT", help="weights folder to write")
    args = parser.parse_args(argv)
    from rts_ros.weights.average import average_weight_folders

    try:
        st = average_weight_folders(args.inputs, args.output,
                                    command="rts-average " + " ".join(args.inputs) + f" --output {args.output}")
    except RTSError as err:
        print(f"rts-average: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"rts-average: error: cannot write {err.filename or args.output}: {err.strerror or err}",
              file=sys.stderr)
        return 2
    print(f"rts-average: mean of {len(args.inputs)} folders -> {st}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
