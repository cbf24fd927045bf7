"""The model registered in the Azure ML workspace: its files in the workspace storage, a versioned
model asset (``ModelContainer`` + ``ModelVersion``) that online and batch deployments reference.

Where the files come from: the scoring image's build context (``build_context.py``), which holds
``mlscore:modelPath`` (a file or a folder; default ``aml/model/diabetes-ridge/1``, the sample
Ridge model that ``python -m scoring.sample_model.train --out aml/model`` writes, committed) in
Azure ML's layout. So Azure ML registers exactly the bytes the images carry, laid out the same
under ``AZUREML_MODEL_DIR``: a file as ``<file>``, a folder as ``<folder>/...``. Nothing is
trained while the program runs: a preview must not execute training code, and a deploy must
upload exactly the reviewed bytes. Each file becomes a ``storage.Blob`` (a ``pulumi.FileAsset``,
so a changed file shows in the preview) under ``<container>/<modelName>/<modelVersion>/`` of the
workspace's storage account, reached by Azure ML through an identity-based datastore (no account
key in the workspace); the model version points at the file or folder there, as registering that
path with the Azure ML SDK does. The model version is the config's ``modelVersion``; Azure ML
versions are immutable, so new model bytes need a new version.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_azure_native.machinelearningservices as ml
import pulumi_azure_native.storage as storage

from components.settings import Settings

MODEL_CONTAINER = "aml-models"  # blob container in the workspace storage account
DATASTORE = "mlscore_models"  # Azure ML datastore names: letters, digits and underscores


@dataclass(frozen=True)
class AmlModelArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    workspace_name: pulumi.Input[str]
    storage_account_name: pulumi.Input[str]
    # (path under AZUREML_MODEL_DIR, file): BuildContext.model_files, the bytes the images carry
    model_files: Sequence[tuple[str, Path]]
    source: str = ""  # mlscore:modelPath as configured (shown in the description)


def model_asset_path(files: Sequence[tuple[str, Path]]) -> str:
    """What the model version points at, relative to ``<name>/<version>/``: the folder
    (``<folder>/``) or the single file that ``modelPath`` named."""
    top = {rel.split("/", 1)[0] for rel, _ in files}
    if len(top) != 1:
        raise ValueError(f"the model's files must sit under one file or folder, not {sorted(top)}")
    (name,) = top
    return f"{name}/" if any("/" in rel for rel, _ in files) else name


def datastore_uri(
    subscription_id: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    workspace_name: pulumi.Input[str],
    datastore: pulumi.Input[str],
    path: str,
) -> pulumi.Output[str]:
    """The ``azureml://`` URI of ``path`` in a workspace datastore (what model and code assets
    point at)."""
    return pulumi.Output.concat(
        "azureml://subscriptions/",
        subscription_id,
        "/resourcegroups/",
        resource_group_name,
        "/workspaces/",
        workspace_name,
        "/datastores/",
        datastore,
        "/paths/",
        path,
    )


class AmlModel(pulumi.ComponentResource):
    """Uploads the model folder and registers it as ``modelName`` version ``modelVersion``."""

    def __init__(self, name: str, args: AmlModelArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlscore:platform:AmlModel", name, None, opts)
        s = args.settings
        files = list(args.model_files)
        if not files:
            raise ValueError("AmlModel needs the model's files (mlscore:modelPath)")
        child = pulumi.ResourceOptions(parent=self)
        self.model_name = s.model.name
        self.version = s.model.version
        self.subscription_id = args.subscription_id
        self.resource_group_name = args.resource_group_name
        self.workspace_name = args.workspace_name
        prefix = f"{s.model.name}/{s.model.version}"

        self.container = self._blob_container(args, child)
        self.datastore = self._datastore(args, child)
        self.blobs: list[storage.Blob] = self._upload(args, files, prefix, child)
        self.container_registration = self._model_container(args, child)
        self.model_uri = self.uri(f"{prefix}/{model_asset_path(files)}")
        self.model_version = self._model_version(args, files)
        # ARM ID of the model version: what deployments reference.
        self.id = self.model_version.id
        self.register_outputs(
            {
                "name": self.model_name,
                "version": self.version,
                "id": self.id,
                "model_uri": self.model_uri,
            }
        )

    def _blob_container(
        self, args: AmlModelArgs, child: pulumi.ResourceOptions
    ) -> storage.BlobContainer:
        return storage.BlobContainer(
            "container",
            container_name=MODEL_CONTAINER,
            account_name=args.storage_account_name,
            resource_group_name=args.resource_group_name,
            public_access=storage.PublicAccess.NONE,
            opts=child,
        )

    def _datastore(self, args: AmlModelArgs, child: pulumi.ResourceOptions) -> ml.Datastore:
        return ml.Datastore(
            "datastore",
            name=DATASTORE,
            workspace_name=args.workspace_name,
            resource_group_name=args.resource_group_name,
            properties=ml.AzureBlobDatastoreArgs(
                datastore_type="AzureBlob",
                account_name=args.storage_account_name,
                container_name=self.container.name,
                endpoint="core.windows.net",
                protocol="https",
                # Identity-based: Azure ML reads the blobs as the workspace's managed identity.
                credentials=ml.NoneDatastoreCredentialsArgs(credentials_type="None"),
                service_data_access_auth_identity=(
                    ml.ServiceDataAccessAuthIdentity.WORKSPACE_SYSTEM_ASSIGNED_IDENTITY
                ),
                description="Model files and Azure ML code uploaded by the mlscore program.",
                tags=dict(args.settings.tags),
            ),
            opts=child,
        )

    def _upload(
        self,
        args: AmlModelArgs,
        files: list[tuple[str, Path]],
        prefix: str,
        child: pulumi.ResourceOptions,
    ) -> list[storage.Blob]:
        """One block blob per model file, under ``<prefix>/`` of the model container."""
        return [
            storage.Blob(
                f"model-{rel}",
                blob_name=f"{prefix}/{rel}",
                container_name=self.container.name,
                account_name=args.storage_account_name,
                resource_group_name=args.resource_group_name,
                source=pulumi.FileAsset(str(path)),
                type=storage.BlobType.BLOCK,
                content_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                opts=child,
            )
            for rel, path in files
        ]

    def _model_container(
        self, args: AmlModelArgs, child: pulumi.ResourceOptions
    ) -> ml.ModelContainer:
        s = args.settings
        return ml.ModelContainer(
            "model",
            name=s.model.name,
            workspace_name=args.workspace_name,
            resource_group_name=args.resource_group_name,
            properties=ml.ModelContainerPropertiesArgs(
                description=f"{s.model.name}: the model every scoring target serves.",
                tags=dict(s.tags),
            ),
            opts=child,
        )

    def _model_version(self, args: AmlModelArgs, files: list[tuple[str, Path]]) -> ml.ModelVersion:
        s = args.settings
        return ml.ModelVersion(
            "version",
            name=self.container_registration.name,
            version=s.model.version,
            workspace_name=args.workspace_name,
            resource_group_name=args.resource_group_name,
            properties=ml.ModelVersionPropertiesArgs(
                model_uri=self.model_uri,
                model_type="custom_model",
                description=f"{s.model.name} version {s.model.version}: "
                f"{model_asset_path(files)} ({len(self.blobs)} files, as in the scoring image)"
                + (f" from {args.source}." if args.source else "."),
                properties={"files": ",".join(rel for rel, _ in files)},
                tags=dict(s.tags),
            ),
            # The files must be in the datastore before the version that points at them.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.blobs)),
        )

    def uri(self, path: str) -> pulumi.Output[str]:
        """``azureml://`` URI of ``path`` in this component's datastore (for code assets)."""
        return datastore_uri(
            self.subscription_id,
            self.resource_group_name,
            self.workspace_name,
            self.datastore.name,
            path,
        )
