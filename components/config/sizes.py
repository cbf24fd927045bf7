"""VM sizes the program knows, with their vCPUs and accelerators.

Azure ML required an AKS cluster of at least 12 vCPUs in total; validation multiplies node
counts by the vCPUs below. A size missing here is refused with a message that says how to add it
(one line in this table, with the vCPU count from the Azure docs or ``az vm list-sizes``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VmSize:
    vcpus: int
    gpus: int = 0
    fpgas: int = 0


SIZES: dict[str, VmSize] = {
    # General purpose (the seeds' Standard_D3_v2 included)
    "Standard_D2_v2": VmSize(2),
    "Standard_D3_v2": VmSize(4),
    "Standard_D4_v2": VmSize(8),
    "Standard_D5_v2": VmSize(16),
    "Standard_DS2_v2": VmSize(2),
    "Standard_DS3_v2": VmSize(4),
    "Standard_DS4_v2": VmSize(8),
    "Standard_DS5_v2": VmSize(16),
    "Standard_D2s_v3": VmSize(2),
    "Standard_D4s_v3": VmSize(4),
    "Standard_D8s_v3": VmSize(8),
    "Standard_D16s_v3": VmSize(16),
    "Standard_D2s_v5": VmSize(2),
    "Standard_D4s_v5": VmSize(4),
    "Standard_D8s_v5": VmSize(8),
    "Standard_D16s_v5": VmSize(16),
    "Standard_D32s_v5": VmSize(32),
    "Standard_D2ds_v5": VmSize(2),
    "Standard_D4ds_v5": VmSize(4),
    "Standard_D8ds_v5": VmSize(8),
    "Standard_D2as_v5": VmSize(2),
    "Standard_D4as_v5": VmSize(4),
    "Standard_D8as_v5": VmSize(8),
    "Standard_D16as_v5": VmSize(16),
    "Standard_D2s_v6": VmSize(2),
    "Standard_D4s_v6": VmSize(4),
    "Standard_D8s_v6": VmSize(8),
    "Standard_D16s_v6": VmSize(16),
    "Standard_E4s_v5": VmSize(4),
    "Standard_E8s_v5": VmSize(8),
    "Standard_E16s_v5": VmSize(16),
    "Standard_F4s_v2": VmSize(4),
    "Standard_F8s_v2": VmSize(8),
    "Standard_F16s_v2": VmSize(16),
    "Standard_B2s": VmSize(2),
    "Standard_B2ms": VmSize(2),
    "Standard_B4ms": VmSize(4),
    # GPU (NC family: nvidia.com/gpu)
    "Standard_NC4as_T4_v3": VmSize(4, gpus=1),
    "Standard_NC8as_T4_v3": VmSize(8, gpus=1),
    "Standard_NC16as_T4_v3": VmSize(16, gpus=1),
    "Standard_NC64as_T4_v3": VmSize(64, gpus=4),
    "Standard_NC6s_v3": VmSize(6, gpus=1),
    "Standard_NC12s_v3": VmSize(12, gpus=2),
    "Standard_NC24s_v3": VmSize(24, gpus=4),
    "Standard_NC24ads_A100_v4": VmSize(24, gpus=1),
    "Standard_NC40ads_H100_v5": VmSize(40, gpus=1),
    # FPGA (Project Brainwave, Azure ML SDK v1 only)
    "Standard_PB6s": VmSize(6, fpgas=1),
}

# Regions where Project Brainwave offered Standard_PB6s (Azure ML SDK v1 documentation).
FPGA_REGIONS = frozenset({"eastus", "westus2", "westeurope", "southeastasia"})
