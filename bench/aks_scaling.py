"""The AKS scaling rule, replayed: what KEDA's HPA chooses for a trace of in-flight requests,
beside the seeds' formula (components/targets/aks/scaling.py has the HPA's rule and its source).

    .venv/bin/python bench/aks_scaling.py [STACK]   # prints the table, writes bench/results/

The stack's own numbers (autoscaleMin/MaxReplicas, autoscaleTargetUtilization,
maxConcurrentRequestsPerContainer) come from its Pulumi.<stack>.yaml. Not a timing benchmark:
the figures are replica counts, the same on every machine.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.targets.aks import scaling  # noqa: E402
from tests.infra.settings_helpers import load  # noqa: E402

# (second, in-flight requests over all scoring pods): idle, a ramp, a burst, the fall, idle.
TRACE = [(0, 0.5), (30, 2.0), (60, 2.7), (120, 6.0), (150, 9.5), (240, 2.5), (300, 0.6), (420, 0.6)]


def main(stack: str = "prod") -> int:
    a = load(stack).aks.autoscale
    steps = scaling.simulate(TRACE, a)
    print(
        f"stack {stack}: target {a.target_in_flight:g} in flight per replica "
        f"({a.max_concurrent_per_container} x {a.target_utilization}%), "
        f"replicas {a.min_replicas}-{a.effective_max_replicas}, HPA sync {scaling.SYNC_SECONDS} s, "
        f"down window {scaling.DOWN_WINDOW_SECONDS} s, tolerance {scaling.TOLERANCE:.0%}"
    )
    print(scaling.table(steps))
    out = ROOT / "bench" / "results" / f"aks_scaling_{stack}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([asdict(s) for s in steps], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:2]))
