"""Batch scoring on Azure ML compute: an ``AmlCompute`` cluster that scales to zero, a batch
endpoint and a batch deployment of the registered model (the seeds' batch inference on Azure ML
compute with normal or low-priority VMs).

- Compute: ``batchVmSize`` nodes, 0 to ``batchMaxNodes`` (nothing runs, nothing is billed, between
  jobs; idle nodes go after 2 minutes), low-priority VMs when ``batchLowPriority`` (cheaper,
  pre-emptible: Azure ML retries pre-empted mini batches), no SSH, local auth off.
- Code: ``aml/batch/score.py`` (``init()`` loads the model from ``AZUREML_MODEL_DIR``;
  ``run(mini_batch)`` scores a list of CSV files) uploaded next to the model and registered as a
  code asset whose version is the file's hash; environment: Azure ML's OpenMPI Ubuntu base image
  with ``aml/batch/conda.yaml`` (the scikit-learn that pickled the model).
- Input of a job: a ``uri_folder`` (or ``uri_file``) of CSV files, one row per sample, 10 numeric
  columns (the diabetes features), no header.
- Output of a job: ``predictions.csv`` in the job's default output folder, one line per input
  row, ``<file name>,<row index>,<prediction>`` (``output_action: append_row``).
- Invoke: ``POST <invocation_uri>`` with an Entra token for ``https://ml.azure.com`` (batch
  endpoints take Entra tokens only) and
  ``{"properties": {"InputData": {"input": {"JobInputType": "UriFolder", "Uri": "azureml://..."}}}}``,
  or ``az ml batch-endpoint invoke --name <endpoint> --input <folder>``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.machinelearningservices as ml
import pulumi_azure_native.storage as storage

from components import PROJECT_ROOT
from components.contract import ROLE_ACR_PULL, role_definition_id
from components.providers.arm_patch import ArmPropertiesPatch
from components.settings import Settings
from components.targets.aml.common import API_VERSION, workspace_scope
from components.targets.aml.model import AmlModel

AML_DIR = PROJECT_ROOT / "aml" / "batch"
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
COMPUTE_NAME = "batch-cpu"  # 2-16 characters, unique within the workspace
DEPLOYMENT_NAME = "score"
ENTRA_SCOPE = "https://ml.azure.com/.default"
OUTPUT_FILE = "predictions.csv"
ROLE_STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"


@dataclass(frozen=True)
class AmlBatchArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    workspace_name: pulumi.Input[str]
    storage_account_name: pulumi.Input[str]
    model: AmlModel
    code_dir: Path = AML_DIR


def batch_endpoint_name(settings: Settings) -> str:
    """Batch endpoint names are unique per region (DNS labels): 3-32 characters."""
    return settings.naming.global_dashed("batch")[:32].rstrip("-")


def content_hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:12]


def batch_outputs(
    settings: Settings, invocation_uri: pulumi.Output[str], endpoint_name: pulumi.Output[str]
) -> dict[str, Any]:
    """The ``batch`` stack output: where to invoke, how to authenticate, what goes in and out."""
    b = settings.batch
    return {
        "invocation_uri": invocation_uri,
        "endpoint_name": endpoint_name,
        "deployment": DEPLOYMENT_NAME,
        "auth": {"scheme": "entra-token", "scope": ENTRA_SCOPE},
        "input": "uri_folder of CSV files: 10 numeric columns per row, no header",
        "output": f"{OUTPUT_FILE}: <file name>,<row index>,<prediction> per input row",
        "compute": {
            "name": COMPUTE_NAME,
            "vm_size": b.vm_size,
            "min_nodes": 0,
            "max_nodes": b.max_nodes,
            "low_priority": b.low_priority,
        },
    }


class AmlBatch(pulumi.ComponentResource):
    def __init__(self, name: str, args: AmlBatchArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlscore:target:AmlBatch", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        scope = workspace_scope(args.workspace_name, args.resource_group_name)

        self.compute = self._compute(s, scope, child)
        self.grants = self._compute_grants(args, child)
        # Scoring script: uploaded to <container>/code/batch/<hash>/ and registered as code.
        script = args.code_dir / "score.py"
        code_hash = content_hash(script.read_bytes())
        code_path = f"code/batch/{code_hash}"
        self.script_blob = self._script_blob(args, script, code_path, child)
        self.code = self._code(s, scope, child)
        self.code_version = self._code_version(args, code_hash, code_path, scope)
        conda_text = (args.code_dir / "conda.yaml").read_text()
        self.environment = self._environment(s, scope, child)
        self.environment_version = self._environment_version(s, conda_text, scope, child)
        self.endpoint = self._endpoint(s, scope, child)
        self.deployment = self._deployment(args, scope, child)
        self.defaults = self._defaults(child)

        self.invocation_uri = self.endpoint.properties.apply(lambda p: p.scoring_uri or "")
        self.outputs: dict[str, Any] = batch_outputs(s, self.invocation_uri, self.endpoint.name)
        self.register_outputs(self.outputs)

    def _compute(
        self, s: Settings, scope: dict[str, Any], child: pulumi.ResourceOptions
    ) -> ml.Compute:
        return ml.Compute(
            "compute",
            compute_name=COMPUTE_NAME,
            location=s.location,
            # The registry has no admin user and the datastore no credentials: the nodes pull
            # the environment's image and read the model as this identity (_compute_grants).
            identity=ml.ManagedServiceIdentityArgs(
                type=ml.ManagedServiceIdentityType.SYSTEM_ASSIGNED
            ),
            properties=ml.AmlComputeArgs(
                compute_type="AmlCompute",
                description="Batch scoring cluster; scales to zero between jobs.",
                disable_local_auth=True,
                properties=ml.AmlComputePropertiesArgs(
                    vm_size=s.batch.vm_size,
                    vm_priority=(
                        ml.VmPriority.LOW_PRIORITY
                        if s.batch.low_priority
                        else ml.VmPriority.DEDICATED
                    ),
                    scale_settings=ml.ScaleSettingsArgs(
                        min_node_count=0,
                        max_node_count=s.batch.max_nodes,
                        node_idle_time_before_scale_down="PT120S",
                    ),
                    os_type=ml.OperatingSystemType.LINUX,
                    remote_login_port_public_access=ml.RemoteLoginPortPublicAccess.DISABLED,
                    enable_node_public_ip=True,  # no VNet here: nodes reach Azure ML directly
                    isolated_network=False,
                ),
            ),
            tags=dict(s.tags),
            opts=child,
            **scope,
        )

    def _compute_grants(
        self, args: AmlBatchArgs, child: pulumi.ResourceOptions
    ) -> tuple[authorization.RoleAssignment, ...]:
        """AcrPull on the workspace registry and Storage Blob Data Reader on the workspace storage
        for the cluster's identity: "The Azure Machine Learning compute cluster uses a managed
        identity ... to pull Docker images from ACR. You can also configure identity-based access
        to datastores, which will instead use the managed identity of the compute cluster"
        (https://learn.microsoft.com/azure/machine-learning/how-to-identity-based-service-authentication).

        Nothing waits for them: a job runs only once someone invokes the endpoint.
        """
        s = args.settings
        sub = args.model.subscription_id
        principal = self.compute.identity.apply(lambda i: i.principal_id if i else "")
        scopes = {
            "compute-acr-pull": (
                ROLE_ACR_PULL,
                _arm_id(
                    sub,
                    args.resource_group_name,
                    "Microsoft.ContainerRegistry/registries",
                    s.naming.registry(),
                ),
            ),
            "compute-blob-reader": (
                ROLE_STORAGE_BLOB_DATA_READER,
                _arm_id(
                    sub,
                    args.resource_group_name,
                    "Microsoft.Storage/storageAccounts",
                    args.storage_account_name,
                ),
            ),
        }
        return tuple(
            authorization.RoleAssignment(
                name,
                principal_id=principal,
                principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
                role_definition_id=role_definition_id(sub, role),
                scope=scope,
                opts=child,
            )
            for name, (role, scope) in scopes.items()
        )

    def _script_blob(
        self, args: AmlBatchArgs, script: Path, code_path: str, child: pulumi.ResourceOptions
    ) -> storage.Blob:
        return storage.Blob(
            "script",
            blob_name=f"{code_path}/score.py",
            container_name=args.model.container.name,
            account_name=args.storage_account_name,
            resource_group_name=args.resource_group_name,
            source=pulumi.FileAsset(str(script)),
            type=storage.BlobType.BLOCK,
            content_type="text/x-python",
            opts=child,
        )

    def _code(
        self, s: Settings, scope: dict[str, Any], child: pulumi.ResourceOptions
    ) -> ml.CodeContainer:
        return ml.CodeContainer(
            "code",
            name="mlscore-batch-score",
            properties=ml.CodeContainerPropertiesArgs(
                description="Batch scoring script (aml/batch/score.py).", tags=dict(s.tags)
            ),
            opts=child,
            **scope,
        )

    def _code_version(
        self, args: AmlBatchArgs, code_hash: str, code_path: str, scope: dict[str, Any]
    ) -> ml.CodeVersion:
        return ml.CodeVersion(
            "code-version",
            name=self.code.name,
            version=code_hash,
            properties=ml.CodeVersionPropertiesArgs(
                code_uri=args.model.uri(f"{code_path}/"),
                description=f"aml/batch/score.py, sha256 {code_hash}",
                tags=dict(args.settings.tags),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.script_blob]),
            **scope,
        )

    def _environment(
        self, s: Settings, scope: dict[str, Any], child: pulumi.ResourceOptions
    ) -> ml.EnvironmentContainer:
        return ml.EnvironmentContainer(
            "environment",
            name="mlscore-batch",
            properties=ml.EnvironmentContainerPropertiesArgs(
                description="Batch scoring environment (aml/batch/conda.yaml).",
                tags=dict(s.tags),
            ),
            opts=child,
            **scope,
        )

    def _environment_version(
        self, s: Settings, conda_text: str, scope: dict[str, Any], child: pulumi.ResourceOptions
    ) -> ml.EnvironmentVersion:
        return ml.EnvironmentVersion(
            "environment-version",
            name=self.environment.name,
            version=content_hash(conda_text.encode(), BASE_IMAGE.encode()),
            properties=ml.EnvironmentVersionPropertiesArgs(
                image=BASE_IMAGE,
                conda_file=conda_text,
                os_type=ml.OperatingSystemType.LINUX,
                auto_rebuild=ml.AutoRebuildSetting.DISABLED,
                description=f"{BASE_IMAGE} + aml/batch/conda.yaml",
                tags=dict(s.tags),
            ),
            opts=child,
            **scope,
        )

    def _endpoint(
        self, s: Settings, scope: dict[str, Any], child: pulumi.ResourceOptions
    ) -> ml.BatchEndpoint:
        return ml.BatchEndpoint(
            "endpoint",
            endpoint_name=batch_endpoint_name(s),
            location=s.location,
            properties=ml.BatchEndpointPropertiesArgs(
                auth_mode=ml.EndpointAuthMode.AAD_TOKEN,  # the only mode batch endpoints take
                description=f"Batch scoring of {s.model.name} for stack {s.stack}.",
            ),
            tags=dict(s.tags),
            opts=child,
            **scope,
        )

    def _deployment(
        self, args: AmlBatchArgs, scope: dict[str, Any], child: pulumi.ResourceOptions
    ) -> ml.BatchDeployment:
        s = args.settings
        return ml.BatchDeployment(
            "deployment",
            deployment_name=DEPLOYMENT_NAME,
            endpoint_name=self.endpoint.name,
            location=s.location,
            properties=ml.BatchDeploymentPropertiesArgs(
                compute=self.compute.id,
                model=ml.IdAssetReferenceArgs(reference_type="Id", asset_id=args.model.id),
                code_configuration=ml.CodeConfigurationArgs(
                    code_id=self.code_version.id, scoring_script="score.py"
                ),
                environment_id=self.environment_version.id,
                resources=ml.DeploymentResourceConfigurationArgs(
                    instance_count=s.batch.instance_count
                ),
                mini_batch_size=10,
                max_concurrency_per_instance=2,
                output_action=ml.BatchOutputAction.APPEND_ROW,
                output_file_name=OUTPUT_FILE,
                retry_settings=ml.BatchRetrySettingsArgs(max_retries=3, timeout="PT5M"),
                error_threshold=-1,
                logging_level=ml.BatchLoggingLevel.INFO,
                description=f"{s.model.name} {s.model.version}: CSV rows in, predictions out.",
            ),
            tags=dict(s.tags),
            opts=child,
            **scope,
        )

    def _defaults(self, child: pulumi.ResourceOptions) -> ArmPropertiesPatch:
        # The endpoint's default deployment can only name a deployment that exists.
        return ArmPropertiesPatch(
            "defaults",
            resource_id=self.endpoint.id,
            api_version=API_VERSION,
            values={"defaults": {"deploymentName": DEPLOYMENT_NAME}},
            after=[self.deployment.id],
            opts=child,
        )


def _arm_id(
    subscription_id: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    resource_type: str,
    name: pulumi.Input[str],
) -> pulumi.Output[str]:
    """The ARM ID of a resource of the workspace's resource group (the registry and storage account
    the workspace links: their names come from the same naming rules)."""
    return pulumi.Output.concat(
        "/subscriptions/",
        subscription_id,
        "/resourceGroups/",
        resource_group_name,
        f"/providers/{resource_type}/",
        name,
    )
