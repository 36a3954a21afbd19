"""rts-label-static: training sequences (DAVIS-style folders) from static-camera videos by background subtraction.

Every object that moves in front of a fixed camera becomes one sequence with a mask per frame (cast shadows
count as background). The masks are pseudo-labels; see rts_ros.data.static_camera for what they miss.
Train on the result with a `kind: davis` dataset whose root is OUT_DIR (config/train_small_gpu_real.yaml).
OUT_DIR/previews/VIDEO.jpg shows one tile per sequence (middle frame, mask in red, box in green) for checking
the labels by eye. A video whose background moves gets a warning (--max-camera-shift leaves such videos out;
the exit status is then 1).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rts_ros.errors import RTSError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rts-label-static", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", type=Path, nargs="+", help="videos from a camera that does not move")
    p.add_argument("out_dir", type=Path, help="DAVIS-style root (JPEGImages/, Annotations/, ImageSets/2017/train.txt)")
    p.add_argument("--min-length", type=int, default=12, help="shortest track kept, in frames (default 12)")
    p.add_argument("--min-area", type=int, default=150, help="smallest object kept, in pixels (default 150)")
    p.add_argument("--max-frames", type=int, help="use only the first frames of each video")
    p.add_argument("--max-camera-shift", type=float,
                   help="leave out videos whose background moves more than this (pixels; default: only warn)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import cv2
        from tqdm import tqdm

        from rts_ros.cli import check_output_dir
        from rts_ros.data.static_camera import (CameraMovesError, StaticCameraParams, foreground_masks, link_tracks,
                                                preview_sheet, write_davis_folder)

        if args.min_length < 2 or args.min_area < 1 or (args.max_frames is not None and args.max_frames < 2):
            raise RTSError("--min-length and --max-frames must be >= 2 and --min-area >= 1")
        if args.max_camera_shift is not None and not args.max_camera_shift >= 0:
            raise RTSError("--max-camera-shift must be a number >= 0")
        check_output_dir(args.out_dir, "output folder")   # before the first video is processed
        stems = [v.stem for v in args.videos]
        if len(set(stems)) < len(stems):
            raise RTSError(f"two videos share a file name ({', '.join(sorted(stems))}): their sequences are named "
                           "after it and would overwrite each other; rename one")
        params = StaticCameraParams(min_length=args.min_length, min_area=args.min_area, max_frames=args.max_frames,
                                    max_camera_shift=args.max_camera_shift)
        total, skipped = 0, []
        for video in args.videos:
            cap = cv2.VideoCapture(str(video))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
            cap.release()
            n = min(n, args.max_frames or n)
            # four passes over the video: learn the background (twice), label and link, write
            with tqdm(total=4 * n or None, desc=video.name, unit="frame", disable=args.no_progress,
                      file=sys.stderr) as bar:
                try:
                    tracks = link_tracks(foreground_masks(video, params, bar.update, warn=_warn), params)
                except CameraMovesError as exc:
                    print(f"rts-label-static: skipped: {exc}", file=sys.stderr)
                    skipped.append(video.name)
                    tracks = None
                # a skipped video writes no tracks, which removes those of an earlier run of it
                names = write_davis_folder(video, tracks or [], args.out_dir, video.stem, bar.update)
            preview = args.out_dir / "previews" / f"{video.stem}.jpg"
            preview.unlink(missing_ok=True)     # a rerun that finds nothing leaves no stale sheet
            if tracks is None:
                continue
            frames = sum(t.length for t in tracks)
            sheet = preview_sheet(args.out_dir, names)
            if sheet is not None:
                preview.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(preview), sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
            print(f"{video}: {len(names)} sequences, {frames} frames" + (f"; preview {preview}" if sheet is not None
                                                                          else ""))
            total += len(names)
    except RTSError as exc:
        print(f"rts-label-static: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {total} sequences to {args.out_dir}")
    if skipped:
        print(f"rts-label-static: {len(skipped)} video(s) left out: {', '.join(skipped)}", file=sys.stderr)
        return 1
    return 0


def _warn(message: str) -> None:
    print(f"rts-label-static: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
