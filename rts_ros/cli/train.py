"""rts-train: train RTS (or STA) from a YAML config; resumable; runs under torchrun for data parallelism.

  rts-train --config config/train_small.yaml --output runs/small            # start
  rts-train --config config/train_small.yaml --output runs/small --resume   # continue from the last checkpoint
  torchrun --nproc_per_node 2 -m rts_ros.cli.train --config ... --output ...
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from rts_ros.errors import RTSError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rts-train", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="training YAML (see config/train_small.yaml)")
    p.add_argument("--output", required=True, help="run folder: checkpoints/, loss_log.csv, loss_plot.png, final/")
    p.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint")
    p.add_argument("--init-weights", help="weights folder to fine-tune from (freezes conv1/bn1/layer1, BN eval)")
    p.add_argument("--max-steps", type=int, help="stop after this global step (checkpoint written)")
    p.add_argument("--max-minutes", type=float, help="stop after this wall time (checkpoint written)")
    p.add_argument("--threads", type=int, help="torch threads per process (config: threads)")
    p.add_argument("--workers", type=int, help="data-loading worker processes (config: num_workers)")
    p.add_argument("--device", help="cpu, cuda, cuda:0 ... (config: device, default auto)")
    p.add_argument("--export", help="also write the final network as a weights folder here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from rts_ros.train.config import TrainConfig
        from rts_ros.train.trainer import Trainer
        cfg = TrainConfig.from_yaml(args.config)
        for attr, value in (("init_weights", args.init_weights), ("max_steps", args.max_steps),
                            ("max_minutes", args.max_minutes), ("threads", args.threads),
                            ("num_workers", args.workers), ("device", args.device)):
            if value is not None:
                setattr(cfg, attr, value)
        cfg.validate()
        command = "rts-train " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
        trainer = Trainer(cfg, args.output, resume=args.resume, command=command)
        try:
            step = trainer.train(progress=not args.no_progress)
            if trainer.dist.main:
                trainer.export(Path(args.output) / "final")
                if args.export:
                    trainer.export(args.export)
                print(f"rts-train: stopped at step {step}/{trainer.total_steps}; weights in "
                      f"{Path(args.output) / 'final'}, log {Path(args.output) / 'loss_log.csv'}")
            trainer.wait_for_all()
        finally:
            trainer.close()
    except RTSError as exc:
        print(f"rts-train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
