"""rts-convert IN OUT_DIR: official rts50.pth / sta.pth.tar -> weights folder (safetensors + JSON)."""
from __future__ import annotations

import argparse
import sys

from rts_ros.errors import RTSError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rts-convert",
        description="Convert an official pytracking checkpoint (rts50.pth or sta.pth.tar) into a weights folder "
                    "(<net>.safetensors + <net>.json). Run once per file into the same OUT_DIR. "
                    "Nothing from the file is executed.")
    parser.add_argument("src", metavar="IN", help="rts50.pth or sta.pth.tar")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="weights folder to create or complete")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    from rts_ros.weights.convert import convert_checkpoint

    log = None if args.quiet else (lambda msg: print(f"rts-convert: {msg}", file=sys.stderr, flush=True))
    try:
        res = convert_checkpoint(args.src, args.out_dir, progress=not args.quiet, log=log)
    except RTSError as err:
        print(f"rts-convert: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. OUT_DIR not writable or a file
        print(f"rts-convert: error: cannot write {err.filename or args.out_dir}: {err.strerror or err}; "
              f"choose a writable OUT_DIR", file=sys.stderr)
        return 2
    print(f"{res.network}: {res.num_tensors} tensors -> {res.safetensors} (+ {res.json.name}), "
          f"source sha256 {res.source_sha256}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
