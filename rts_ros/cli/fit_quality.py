"""rts-fit-quality: fit (or, with --check, test) a weights folder's quality model on annotated sequences.

    rts-fit-quality DATA [DATA ...] [--weights DIR] [--write] [--check] [--device cpu] [--no-progress]

DATA: folders of annotated sequences, as rts-eval reads them (frames + groundtruth.txt, or DAVIS). The model
is stored in <weights>/rts.json (`quality`) only with --write. --check reports the weights' own model on DATA
(use sequences the model was not fitted on).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rts_ros.errors import RTSError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rts-fit-quality", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="+", type=Path, help="folders of annotated sequences")
    p.add_argument("--weights", type=Path, default=None, help="weights folder (default: the shipped model)")
    p.add_argument("--write", action="store_true", help="store the fitted model in <weights>/rts.json")
    p.add_argument("--check", action="store_true", help="do not fit: report the weights' own quality model")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:N or auto")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.write and args.check:
        build_parser().error("--write and --check exclude each other")
    try:
        return _run(args)
    except RTSError as e:
        print(f"rts-fit-quality: error: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from rts_ros.api import Tracker
    from rts_ros.data.eval_folders import find_sequences, qualify_duplicate_names
    from rts_ros.eval import quality_fit as qf
    from rts_ros.weights import default_weights_dir

    weights = Path(args.weights) if args.weights is not None else default_weights_dir()
    if args.write and weights.is_dir() and not os.access(weights, os.W_OK | os.X_OK):
        # rts.json is replaced through a temporary file next to it: check now, not after the whole fit
        raise RTSError(f"--write: the weights folder {weights} is not writable; copy it somewhere writable and "
                       "pass the copy as --weights")
    seqs = qualify_duplicate_names([(d, s) for d in args.data for s in find_sequences(d)])
    if not seqs:
        raise RTSError(f"no annotated sequences under {[str(d) for d in args.data]}")
    tracker = Tracker.from_weights(weights, device=args.device)
    if args.check and tracker.quality_model is None:
        raise RTSError(f"{weights}/rts.json has no quality model to check; fit one first (without --check)")
    with tqdm(total=sum(len(s) - 1 for s in seqs), unit="frame", file=sys.stderr, disable=args.no_progress) as bar:
        rows = qf.collect(tracker, seqs, on_frame=lambda: bar.update(1))
    if args.check:
        print(f"quality model of {weights} on {len(seqs)} sequences:")
        print(qf.format_report(qf.report(rows, rows.quality)))
        return 0
    record = {"data": [d.name for d in args.data], "sequences": len(seqs), "frames": int(len(rows.iou)),
              "labels": f"right: box IoU >= {qf.RIGHT_IOU}, wrong: IoU < {qf.WRONG_IOU}"}
    model = qf.fit(rows, record)
    fitted = np.array([model.predict(x) for x in rows.features])
    summary = qf.report(rows, fitted)
    model.record.update({"auc_quality_in_sample": round(summary["auc_quality"], 4),
                         "auc_confidence": round(summary["auc_confidence"], 4)})
    print(f"quality model fitted on {len(seqs)} sequences (in-sample figures):")
    print(qf.format_report(summary))
    print("coefficients (standardised signals): " + ", ".join(
        f"{n} {c:+.3f}" for n, c in zip(qf.FEATURES, model.coef)) + f", bias {model.bias:+.3f}")
    if args.write:
        print(f"written to {qf.write_model(weights, model)}")
    else:
        print("not written (add --write to store it in the weights folder)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
