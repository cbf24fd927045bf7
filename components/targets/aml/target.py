"""Azure ML as one target: the model registered in the workspace (the same bytes the images
carry), served by a managed online endpoint (blue/green) and by batch scoring on a cluster that
scales to zero, each switched on by its own settings."""

from __future__ import annotations

from dataclasses import dataclass

from components.contract import (
    AmlEndpoint,
    Interfaces,
    ScoringDeployment,
    TargetEntry,
)
from components.platform import diagnostics as diag
from components.platform.bundle import Platform
from components.targets.aml.batch import AmlBatch, AmlBatchArgs
from components.targets.aml.model import AmlModel, AmlModelArgs
from components.targets.aml.online import AmlOnline, AmlOnlineArgs

KEY = "aml_online"  # the online endpoint's key in the endpoints output


@dataclass(frozen=True)
class AzureMl:
    model: AmlModel
    online: AmlOnline | None
    batch: AmlBatch | None

    def interfaces(self) -> Interfaces:
        m = self.model
        outputs: dict[str, object] = {
            "model": {"name": m.model_name, "version": m.version, "id": m.id}
        }
        if self.batch is not None:
            outputs["batch"] = self.batch.outputs
        if self.online is None:
            return Interfaces(outputs=outputs)
        online = self.online.online_endpoint
        return Interfaces(
            endpoints={KEY: self.online.endpoint},
            diagnostics=tuple(diag.resource("online-endpoint", online.id)),
            alerts=(AmlEndpoint(online.name),),
            outputs=outputs,
        )


def build(d: ScoringDeployment, p: Platform) -> AzureMl:
    s = d.settings
    ws = p.workspace
    model = AmlModel(
        "model",
        AmlModelArgs(
            s,
            d.resource_group_name,
            p.subscription_id,
            ws.name,
            ws.storage.name,
            p.context.model_files,  # the same bytes the images carry
            p.context.build_args["MODEL_SOURCE"],
        ),
    )
    online = (
        AmlOnline("aml-online", AmlOnlineArgs(d, ws.name, model.id, p.cache))
        if s.online.enabled
        else None
    )
    batch = (
        AmlBatch(
            "aml-batch",
            AmlBatchArgs(s, d.resource_group_name, ws.name, ws.storage.name, model, d.image),
        )
        if s.batch.enabled
        else None
    )
    return AzureMl(model, online, batch)


# Always on: the model is registered in the workspace whichever way Azure ML serves it.
TARGET: TargetEntry[Platform] = TargetEntry(KEY, lambda _: True, build)
