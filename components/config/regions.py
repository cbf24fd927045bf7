"""Azure regions: the public cloud's names, and which have availability zones (read by every
section that offers zones).

Source of both: "Azure regions list", https://learn.microsoft.com/azure/reliability/regions-list
(the "Programmatic name" column, the name ``location`` takes and ``az account list-locations -o
table`` prints as Name; the "Availability zones" column). Sovereign clouds (Azure Government,
Azure operated by 21Vianet) have other names and other endpoints: not listed, so refused. A region
that opens after this list was written is refused too, naming this file: add it here.
"""

from __future__ import annotations

REGIONS = frozenset(
    {
        # Americas
        "brazilsouth", "brazilsoutheast", "canadacentral", "canadaeast", "centralus",
        "chilecentral", "eastus", "eastus2", "mexicocentral", "northcentralus",
        "southcentralus", "westcentralus", "westus", "westus2", "westus3",
        # Europe
        "austriaeast", "belgiumcentral", "denmarkeast", "francecentral", "francesouth",
        "germanynorth", "germanywestcentral", "italynorth", "northeurope", "norwayeast",
        "norwaywest", "polandcentral", "spaincentral", "swedencentral", "swedensouth",
        "switzerlandnorth", "switzerlandwest", "uksouth", "ukwest", "westeurope",
        # Middle East and Africa
        "israelcentral", "qatarcentral", "southafricanorth", "southafricawest", "uaecentral",
        "uaenorth",
        # Asia Pacific
        "australiacentral", "australiacentral2", "australiaeast", "australiasoutheast",
        "centralindia", "eastasia", "indonesiacentral", "japaneast", "japanwest",
        "jioindiacentral", "jioindiawest", "koreacentral", "koreasouth", "malaysiawest",
        "newzealandnorth", "southeastasia", "southindia", "westindia",
    }
)  # fmt: skip

# Regions with availability zones. A region missing here (a new one) is refused for
# zone-redundant settings: add it.
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
