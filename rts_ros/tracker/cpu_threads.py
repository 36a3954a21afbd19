"""How many threads torch gives one operation on the CPU (a process-wide setting)."""
from __future__ import annotations

import torch

from rts_ros.errors import ConfigError


def set_cpu_threads(n: int) -> int:
    """Use ``n`` threads per CPU operation in this process from now on (0: leave torch's choice, one per
    physical core). Returns the number in effect.

    Why a robot may want 1: torch's OpenMP workers spin-wait between the network's many small operations, so
    when other processes compete for the cores, a worker that is preempted stalls every operation. On a
    2-core machine with two other busy processes the shipped model took 145-243 ms per frame (median) with
    2 threads and 39-44 ms with 1; on an idle machine 32 ms against 40 ms (docs: README, "Behaviour").
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"cpu threads = {n!r}: must be an integer >= 0 (0 = torch's default)")
    if n:
        torch.set_num_threads(n)
    return torch.get_num_threads()
