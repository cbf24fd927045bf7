"""Azure regions: which have availability zones (read by every section that offers zones)."""

from __future__ import annotations

# Regions with availability zones (Azure public cloud), by programmatic name: "Azure regions
# list", https://learn.microsoft.com/azure/reliability/regions-list (the "Availability zones"
# column). A region missing here (a new one) is refused for zone-redundant settings: add it.
REGIONS_WITH_ZONES = frozenset(
    {
        # Americas
        "brazilsouth", "canadacentral", "centralus", "chilecentral", "eastus", "eastus2",
        "mexicocentral", "southcentralus", "westus2", "westus3",
        # Europe
        "austriaeast", "belgiumcentral", "francecentral", "germanywestcentral",
        "italynorth", "northeurope", "norwayeast", "polandcentral", "spaincentral",
        "swedencentral", "switzerlandnorth", "uksouth", "westeurope",
        # Middle East and Africa
        "israelcentral", "qatarcentral", "southafricanorth", "uaenorth",
        # Asia Pacific
        "australiaeast", "centralindia", "eastasia", "indonesiacentral", "japaneast",
        "japanwest", "koreacentral", "malaysiawest", "newzealandnorth", "southeastasia",
    }
)  # fmt: skip
