"""Azure Container Instances target settings: CPU and memory of the container group."""

from __future__ import annotations

from dataclasses import dataclass

from components.config.reader import Reader


@dataclass(frozen=True)
class AciSettings:
    enabled: bool
    cpu: float
    memory_gb: float


def read(r: Reader) -> AciSettings:
    aci = AciSettings(r.bool("aciEnabled"), r.float("aciCpu"), r.float("aciMemoryGb"))
    if "aciCpu" in r.values and not 0.1 <= aci.cpu <= 4:
        r.fail(
            "aciCpu",
            aci.cpu,
            "Linux container groups take 0.1-4 CPU cores",
            "set mlscore:aciCpu between 0.1 and 4 (the seeds use 1)",
        )
    if "aciMemoryGb" in r.values and not 0.1 <= aci.memory_gb <= 16:
        r.fail(
            "aciMemoryGb",
            aci.memory_gb,
            "Linux container groups take 0.1-16 GB",
            "set mlscore:aciMemoryGb between 0.1 and 16 (the seeds use 1)",
        )
    if "aciMemoryGb" in r.values and round(aci.memory_gb * 10) != aci.memory_gb * 10:
        r.fail(
            "aciMemoryGb",
            aci.memory_gb,
            "memory is set in steps of 0.1 GB",
            "round mlscore:aciMemoryGb to one decimal",
        )
    return aci
