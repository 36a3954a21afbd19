"""rts-synth: write synthetic tracking sequences as OTB/LaSOT + DAVIS-style folders (or a demo mp4)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rts_ros.errors import RTSError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rts-synth", description=__doc__)
    p.add_argument("out_dir", type=Path, help="folder that receives one sub-folder per sequence")
    p.add_argument("--num-seqs", type=int, default=10, help="number of sequences (default 10)")
    p.add_argument("--seed", type=int, default=1000,
                   help="seed of the first sequence; sequence i uses seed+i (default 1000; "
                        "keep evaluation seeds apart from training seeds)")
    p.add_argument("--frames", type=int, default=100, help="frames per sequence (default 100)")
    p.add_argument("--height", type=int, default=240, help="frame height in pixels (default 240)")
    p.add_argument("--width", type=int, default=320, help="frame width in pixels (default 320)")
    p.add_argument("--difficulty", type=float, default=0.5, help="0 (easy) .. 1 (hard), default 0.5")
    p.add_argument("--format", choices=("jpg", "png"), default="jpg", help="frame image format")
    p.add_argument("--video", action="store_true",
                   help="also write <out_dir>/<name>.mp4 for each sequence (for rts-track / the ROS demo)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from tqdm import tqdm

        from rts_ros.cli import check_output_dir
        from rts_ros.data.synthetic import generate_sequence
        from rts_ros.data.synthetic_io import write_sequence_folder, write_video

        if args.num_seqs < 1 or args.frames < 1:
            raise RTSError("--num-seqs and --frames must be >= 1")
        if args.seed < 0:   # numpy seeds are non-negative
            raise RTSError(f"--seed {args.seed}: give a seed >= 0")
        check_output_dir(args.out_dir, "output folder")
        for i in tqdm(range(args.num_seqs), desc="rts-synth", unit="seq", file=sys.stderr):
            seed = args.seed + i
            seq = generate_sequence(seed, args.height, args.width, args.frames, args.difficulty)
            name = f"synth_{seed:06d}"
            write_sequence_folder(seq, args.out_dir / name, args.format)
            if args.video:
                write_video(args.out_dir / f"{name}.mp4", seq.frames)
    except RTSError as exc:
        print(f"rts-synth: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.num_seqs} sequences to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
