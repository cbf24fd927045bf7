"""Batch scoring on Azure ML compute: an ``AmlCompute`` cluster that scales to zero, a batch
endpoint and a batch deployment of the registered model (the seeds' batch inference on Azure ML
compute with normal or low-priority VMs), scored by the user's own entry script.

- Compute: ``batchVmSize`` nodes, 0 to ``batchMaxNodes`` (nothing runs, nothing is billed, between
  jobs; idle nodes go after 2 minutes), low-priority VMs when ``batchLowPriority`` (cheaper,
  pre-emptible: Azure ML retries pre-empted mini batches), no SSH, local auth off; no public IP
  under network isolation (the workspace's managed network carries the nodes' traffic).
- Code: ``scoring/batch_driver.py``, Azure ML's batch scoring script (``init()`` once per worker,
  ``run(mini_batch)`` per list of files), uploaded next to the model and registered as a code
  asset whose version is the file's hash. It loads the user's entry script
  (``mlscore:entryScript``, in the image at ``AZUREML_ENTRY_SCRIPT``) the way the HTTP host does
  and feeds it every request of every input file.
- Environment: the scoring image every other target runs, by digest, as an image-only Azure ML
  environment (no conda file: nothing is built in the workspace). Azure ML's batch runtime needs
  its own packages in that environment: "The packages azureml-core and
  azureml-dataset-runtime[fuse] are required by batch deployments and should be included in the
  environment dependencies" (https://learn.microsoft.com/azure/machine-learning/
  how-to-use-batch-model-deployments). With batch on, the program builds the image with them
  (scoring/requirements-batch.txt, Dockerfile build argument BATCH_RUNTIME=true, in the same pip
  resolution as the host's and the user's; checked before deploy by
  components/config/user_env.py): one image still serves every target.
- Input of a job: a ``uri_folder`` (or ``uri_file``) of request files: ``.json`` (the seeds'
  ``{"data": [[...], ...]}``, one document or one per line), ``.jsonl``, ``.csv`` (rows become
  ``{"data": rows}``), or any other file as one raw request (``@rawhttp`` scripts).
- Output of a job: ``predictions.jsonl`` in the job's default output folder, one JSON line per
  request of each input file answered in full, ``{"file", "index", "status", "answer"}``
  (``output_action: append_row``). An input file with a failed request is a failed file for
  Azure ML (``error_threshold`` counts files), its rows in ``errors/<file>-<hash>.jsonl`` beside
  the predictions and each failure a line of the job's logs/user/stdout/ (scoring/batch_driver.py).
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
from components.targets.aml.online import image_version

DRIVER = PROJECT_ROOT / "scoring" / "batch_driver.py"
# Where the scoring image puts the entry script's folder (scoring/Dockerfile: COPY code ...).
IMAGE_CODE_DIR = "/var/azureml-app/code"
COMPUTE_NAME = "batch-cpu"  # 2-16 characters, unique within the workspace
DEPLOYMENT_NAME = "score"
ENTRA_SCOPE = "https://ml.azure.com/.default"
OUTPUT_FILE = "predictions.jsonl"
ROLE_STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"


@dataclass(frozen=True)
class AmlBatchArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    workspace_name: pulumi.Input[str]
    storage_account_name: pulumi.Input[str]
    model: AmlModel
    image: pulumi.Input[str]  # the scoring image by digest: what every target runs
    driver: Path = DRIVER


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
        "input": (
            "uri_folder of request files: .json (one document or one per line), .jsonl, "
            '.csv (rows as {"data": rows}), other files as one raw request each'
        ),
        "output": f'{OUTPUT_FILE}: one JSON line per request, {{"file", "index", "status", '
        '"answer"}, of each input file answered in full; an input file with a failed request is '
        "counted failed by Azure ML and its rows are in errors/<file>-<hash>.jsonl beside it "
        "(each failure also logged in the job's logs/user/stdout/)",
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
        # The batch driver: uploaded to <container>/code/batch/<hash>/ and registered as code.
        code_hash = content_hash(args.driver.read_bytes())
        code_path = f"code/batch/{code_hash}"
        self.script_blob = self._script_blob(args, args.driver, code_path, child)
        self.code = self._code(s, scope, child)
        self.code_version = self._code_version(args, code_hash, code_path, scope)
        self.environment = self._environment(s, scope, child)
        self.environment_version = self._environment_version(s, args.image, scope, child)
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
                    # Under network isolation the nodes get no public IP: "Managed compute
                    # resources you create for the workspace automatically use this managed
                    # virtual network" (https://learn.microsoft.com/azure/machine-learning/
                    # how-to-managed-network); enableNodePublicIp false: "the compute nodes will
                    # have a private endpoint and no public IPs" (https://learn.microsoft.com/
                    # dotnet/api/azure.resourcemanager.machinelearning.models.
                    # machinelearningcomputeinstanceproperties.enablenodepublicip). Without
                    # isolation there is no VNet, and the nodes reach Azure ML directly.
                    enable_node_public_ip=not s.network.isolated,
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
            blob_name=f"{code_path}/{script.name}",
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
                description="Batch driver (scoring/batch_driver.py): runs the entry script.",
                tags=dict(s.tags),
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
                description=f"scoring/batch_driver.py, sha256 {code_hash}",
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
                description="The mlscore scoring image, for batch jobs.",
                tags=dict(s.tags),
            ),
            opts=child,
            **scope,
        )

    def _environment_version(
        self,
        s: Settings,
        image: pulumi.Input[str],
        scope: dict[str, Any],
        child: pulumi.ResourceOptions,
    ) -> ml.EnvironmentVersion:
        """The scoring image by digest, as is: an image-only environment ("image: The Docker
        image to use for the environment. One of image or build is required."; a conda_file is
        what Azure ML would build on top of it,
        https://learn.microsoft.com/azure/machine-learning/reference-yaml-environment), so Azure
        ML builds nothing and the nodes pull the image every other target runs (AcrPull:
        _compute_grants)."""
        return ml.EnvironmentVersion(
            "environment-version",
            name=self.environment.name,
            version=pulumi.Output.from_input(image).apply(image_version),
            properties=ml.EnvironmentVersionPropertiesArgs(
                image=image,
                os_type=ml.OperatingSystemType.LINUX,
                auto_rebuild=ml.AutoRebuildSetting.DISABLED,
                description="Scoring image by digest (the image every target runs).",
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
                    code_id=self.code_version.id, scoring_script=args.driver.name
                ),
                environment_id=self.environment_version.id,
                # The entry script the driver runs, where the image has it (read before
                # AZUREML_ENTRY_SCRIPT, which names the scoring script in Azure ML's runtimes).
                environment_variables={"SCORING_BATCH_ENTRY_SCRIPT": entry_script_in_image(s)},
                resources=ml.DeploymentResourceConfigurationArgs(
                    instance_count=s.batch.instance_count
                ),
                mini_batch_size=10,
                max_concurrency_per_instance=2,
                output_action=ml.BatchOutputAction.APPEND_ROW,
                output_file_name=OUTPUT_FILE,
                # A mini batch is retried when run() raises or times out ("The maximum number of
                # retries for a failed or timed-out mini batch", how-to-use-batch-model-
                # deployments): the driver raises only when it cannot score at all, so a crash,
                # an out-of-memory worker or a pre-empted low-priority node is retried, and an
                # input the script refuses every time is not scored three more times.
                retry_settings=ml.BatchRetrySettingsArgs(max_retries=3, timeout="PT5M"),
                # Failed input files (left out of what run() returns) are counted by Azure ML:
                # "For FileDataset, this value is the count of file failures" (https://learn.
                # microsoft.com/dotnet/api/azure.resourcemanager.machinelearning.models.
                # machinelearningbatchdeploymentproperties.errorthreshold). -1 ("any number of
                # failures is allowed without terminating the batch scoring job"): every good
                # file of a job is scored whatever a few bad ones do; the failed ones are
                # counted in the job's logs and recorded under errors/ beside the predictions.
                # (mini_batch_error_threshold belongs to pipeline parallel jobs; a batch
                # deployment has none.)
                error_threshold=-1,
                logging_level=ml.BatchLoggingLevel.INFO,
                description=f"{s.model.name} {s.model.version}: requests in, answers out.",
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


def entry_script_in_image(s: Settings) -> str:
    """The user's entry script in the scoring image (the Dockerfile copies its folder there)."""
    assert s.model.entry_script is not None, "validated by the settings"
    return f"{IMAGE_CODE_DIR}/{s.model.entry_script.name}"


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
