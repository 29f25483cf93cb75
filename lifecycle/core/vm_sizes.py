"""Azure VM sizes an Azure ML cluster commonly uses: cores, memory and list price, for cost estimates and advice."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class VmSize:
    cores: int
    memory_gib: float
    rate: float                     # pay-as-you-go, Linux, per node-hour


# Azure list prices (USD, pay-as-you-go Linux, East US) of the sizes Azure ML clusters commonly use: what a
# cost estimate starts from; COMPUTE_RATES sets the team's own (another region, a discount, a size not listed).
VM_SIZES: Mapping[str, VmSize] = {
    "Standard_DS2_v2": VmSize(2, 7, 0.146), "Standard_DS3_v2": VmSize(4, 14, 0.293),
    "Standard_DS4_v2": VmSize(8, 28, 0.585), "Standard_DS5_v2": VmSize(16, 56, 1.17),
    "Standard_D4s_v3": VmSize(4, 16, 0.192), "Standard_D8s_v3": VmSize(8, 32, 0.384),
    "Standard_D16s_v3": VmSize(16, 64, 0.768),
    "Standard_F4s_v2": VmSize(4, 8, 0.169), "Standard_F8s_v2": VmSize(8, 16, 0.338),
    "Standard_F16s_v2": VmSize(16, 32, 0.677),
    "Standard_E4s_v3": VmSize(4, 32, 0.252), "Standard_E8s_v3": VmSize(8, 64, 0.504),
    "Standard_E16s_v3": VmSize(16, 128, 1.008),
    "Standard_NC6s_v3": VmSize(6, 112, 3.06),
}
