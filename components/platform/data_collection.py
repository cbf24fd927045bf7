"""Model data collection: the blob container the container targets write inputs and outputs to.

Where: a private container ``modeldata`` in the **ML workspace's storage account**, not an account
of its own. Azure ML model monitoring reads production data from the workspace's storage (the
online endpoint's data collector writes to the workspace blob store by default,
https://learn.microsoft.com/azure/machine-learning/concept-data-collection), so the data every
target collects sits beside it, under the same network rules, with no second account to secure
and pay for. The host writes Azure ML's layout
(``modelDataCollector/{endpoint}/{deployment}/{collection}/{yyyy}/{MM}/{dd}/{HH}/...jsonl``).

Who writes: the pull identity, which every container target runs as (App Service, Functions,
ACI; AKS pods through workload identity), with **Storage Blob Data Contributor scoped to the
container** (read, write and delete blobs in it, and nowhere else in the account:
https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage#storage-blob-data-contributor).
The host signs in with that identity (``AZURE_CLIENT_ID``): no account key or SAS anywhere.

Azure ML reads it through a **datastore** ``modeldata`` registered in the workspace, identity-based
(no credentials stored: whoever reads, a user or a monitoring job's compute, uses its own
identity, https://learn.microsoft.com/azure/machine-learning/how-to-datastore), so a model monitor
takes ``azureml://datastores/modeldata/paths/modelDataCollector/<endpoint>/<deployment>/
model_inputs`` as its production data.

Only in stacks with ``dataCollectionEnabled``; the Azure ML online endpoint uses Azure ML's own
data collector instead (``components/targets/aml/online.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.machinelearningservices as ml
import pulumi_azure_native.storage as storage

from components.contract import (
    ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR,
    DataCollectionRef,
    PullIdentity,
    role_definition_id,
)
from components.settings import Settings

CONTAINER = "modeldata"
DATASTORE = "modeldata"


@dataclass(frozen=True)
class DataCollectionArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    storage_account: storage.StorageAccount  # the ML workspace's (MlWorkspace.storage)
    identity: PullIdentity
    workspace_name: pulumi.Input[str]


def container_url(blob_endpoint: str | None, container: str) -> str:
    """``https://<account>.blob.core.windows.net/`` (the account's blob endpoint) + container."""
    return f"{(blob_endpoint or '').rstrip('/')}/{container}"


class DataCollection(pulumi.ComponentResource):
    """``ref``: what the targets get (:attr:`ScoringDeployment.data_collection`)."""

    def __init__(
        self, name: str, args: DataCollectionArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:platform:DataCollection", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = args.storage_account
        self.container = storage.BlobContainer(
            "container",
            container_name=CONTAINER,
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            public_access=storage.PublicAccess.NONE,
            opts=child,
        )
        self.writer_grant = authorization.RoleAssignment(
            "blob-data-contributor",
            principal_id=args.identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=role_definition_id(
                args.subscription_id, ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR
            ),
            scope=self.container.id,  # the container, not the account
            opts=child,
        )
        self.datastore = ml.Datastore(
            "datastore",
            name=DATASTORE,
            workspace_name=args.workspace_name,
            resource_group_name=args.resource_group_name,
            properties=ml.AzureBlobDatastoreArgs(
                datastore_type="AzureBlob",
                account_name=account.name,
                container_name=self.container.name,
                credentials=ml.NoneDatastoreCredentialsArgs(credentials_type="None"),
                description="Inputs and outputs collected by the container targets",
            ),
            opts=child,
        )
        url = account.primary_endpoints.apply(lambda e: container_url(e.blob, CONTAINER))
        self.ref = DataCollectionRef(
            container_url=url, container=CONTAINER, grants=(self.writer_grant,)
        )
        self.register_outputs({"container_url": url, "container": CONTAINER})
