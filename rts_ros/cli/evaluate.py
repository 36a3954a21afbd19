"""rts-eval: run trackers on annotated sequences and report success AUC, precision, J/F and FPS.

Example:  rts-eval /data/otb /data/davis --trackers rts,csrt,kcf --out eval_output
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rts_ros.errors import RTSError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rts-eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, nargs="+",
                   help="sequence folders or dataset roots (OTB/LaSOT groundtruth.txt folders, DAVIS roots, "
                        "rts-synth output)")
    p.add_argument("--trackers", default="rts,csrt,kcf", help="comma separated: rts, csrt, kcf (default all)")
    p.add_argument("--weights", type=Path, default=None,
                   help="weights folder for rts (default: the shipped model, see rts_ros.weights)")
    p.add_argument("--device", default="auto", help="torch device for rts: auto, cpu, cuda, cuda:1...")
    p.add_argument("--init-mask", action="store_true",
                   help="initialise rts with the first-frame mask when the sequence has one (VOS protocol); "
                        "default: box initialisation for every tracker")
    p.add_argument("--out", type=Path, default=Path("eval_output"), help="output folder (default eval_output)")
    p.add_argument("--max-frames", type=int, default=None, help="evaluate only the first N frames per sequence")
    p.add_argument("--sequences", default=None, help="comma separated sequence names to keep")
    p.add_argument("--threads", type=int, default=2,
                   help="CPU threads for torch and OpenCV (default 2; 0 leaves the libraries' defaults)")
    p.add_argument("--start-shifts", type=int, default=0, choices=range(0, 9), metavar="K",
                   help="also run every sequence from K start boxes shifted by one pixel (0-8, default 0) and "
                        "report the pooled result; start_shifts.csv gives the AUC of each start")
    p.add_argument("--title", default=None, help="title of the plots and the table (default: data folder names)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _set_threads(n: int) -> None:
    if n <= 0:
        return
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    import cv2

    cv2.setNumThreads(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # pragma: no cover - torch is a hard dependency of rts only
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from tqdm import tqdm

        from rts_ros.cli import check_output_dir

        from rts_ros.data.eval_folders import find_sequences, qualify_duplicate_names
        from rts_ros.eval.report import markdown_table, summarize, write_reports, write_start_shifts
        from rts_ros.eval.runner import START_SHIFTS, merge_runs, run_sequence
        from rts_ros.eval.trackers import make_tracker

        if args.max_frames is not None and args.max_frames < 1:
            raise RTSError(f"--max-frames {args.max_frames}: give a number of frames >= 1")
        check_output_dir(args.out, "--out")   # now, not after every sequence has been tracked
        _set_threads(args.threads)
        found = [(d, s) for d in args.data for s in find_sequences(d)]
        if args.sequences:
            keep = {n.strip() for n in args.sequences.split(",") if n.strip()}
            found = [(d, s) for d, s in found if s.name in keep]
            if not found:
                raise RTSError(f"none of the sequences {sorted(keep)} was found under {args.data}")
        seqs = qualify_duplicate_names(found)
        names = [n.strip() for n in args.trackers.split(",") if n.strip()]
        if not names:
            raise RTSError("--trackers is empty: give e.g. rts,csrt,kcf")
        trackers = [make_tracker(n, args.weights, args.device, args.init_mask) for n in names]
        per_seq = [len(s) if args.max_frames is None else min(len(s), args.max_frames) for s in seqs]
        shifts = ((0, 0),) + START_SHIFTS[:args.start_shifts]
        results, by_shift = [], {k: [] for k in shifts}
        with tqdm(total=sum(per_seq) * len(trackers) * len(shifts), unit="frame", file=sys.stderr,
                  disable=args.no_progress) as bar:
            for tracker in trackers:
                for seq in seqs:
                    runs = []
                    for shift in shifts:
                        bar.set_description(f"{tracker.name} {seq.name}" + (f" start {shift}" if any(shift) else ""))
                        runs.append(run_sequence(tracker, seq, args.max_frames, on_frame=lambda: bar.update(1),
                                                 start_shift=shift))
                        by_shift[shift].append(runs[-1])
                    results.append(merge_runs(runs))
        summaries = summarize(results)
        title = args.title or ", ".join(d.name for d in args.data)
        paths = write_reports(args.out, results, summaries, title)
        if len(shifts) > 1:
            paths["start_shifts"] = write_start_shifts(args.out, {k: summarize(v) for k, v in by_shift.items()})
    except RTSError as exc:
        print(f"rts-eval: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(seqs)} sequences, {sum(per_seq)} frames\n")
    print(markdown_table(summaries))
    for key, path in paths.items():
        print(f"{key}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
