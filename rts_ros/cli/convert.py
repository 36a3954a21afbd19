"""rts-convert IN OUT_DIR: official rts50.pth / sta.pth.tar -> weights folder (safetensors + JSON)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
        _check_readable(Path(args.src))
        res = convert_checkpoint(args.src, args.out_dir, progress=not args.quiet, log=log)
    except RTSError as err:
        print(f"rts-convert: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.filename is not None and Path(err.filename) == Path(args.src):
            print(f"rts-convert: error: cannot read {args.src}: {err.strerror or err}", file=sys.stderr)
        else:   # e.g. OUT_DIR not writable or a file
            print(f"rts-convert: error: cannot write {err.filename or args.out_dir}: {err.strerror or err}; "
                  f"choose a writable OUT_DIR", file=sys.stderr)
        return 2
    print(f"{res.network}: {res.num_tensors} tensors -> {res.safetensors} (+ {res.json.name}), "
          f"source sha256 {res.source_sha256}")
    return 0


def _check_readable(src: Path) -> None:
    """Errors about IN itself (missing, a folder, no read permission) named as such, not as write errors."""
    try:
        with open(src, "rb"):
            pass
    except FileNotFoundError:
        raise RTSError(f"IN {src} does not exist; give the path of rts50.pth or sta.pth.tar") from None
    except IsADirectoryError:
        raise RTSError(f"IN {src} is a folder; give the checkpoint file in it (rts50.pth or sta.pth.tar)") from None
    except OSError as e:
        raise RTSError(f"cannot read IN {src}: {e.strerror or e}") from None


if __name__ == "__main__":
    sys.exit(main())
