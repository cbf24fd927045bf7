"""The mapping table: every v1 field the migration knows, and the stack key it becomes.

This is the one place that names stack keys: a key renamed in ``Pulumi.yaml`` is a one-line
change here. A key the table maps to that ``Pulumi.yaml`` does not declare (yet) is never
written; its row says "not yet supported by this program".

Field names are the documented v1 spellings (matched case-insensitively); nested objects
(``autoScaler``, ``containerResourceRequirements``, ...) are dotted paths.
"""

from __future__ import annotations

from typing import Any

from migrate import explain as x
from migrate.rules import (
    Context,
    Maps,
    Reports,
    Table,
    Unmapped,
    const,
    decimal,
    fixed,
    mebibytes,
    millicores,
    same,
    when,
)

# The targets' on/off switches: the ones the v1 files describe are turned on, every other
# target of the program is written off (a v1 deployment had only what its configs say).
TARGET_SWITCHES = (
    "appServiceEnabled",
    "functionsEnabled",
    "aciEnabled",
    "aksEnabled",
    "containerAppsEnabled",
    "acceleratorEnabled",
    "iotEnabled",
    "onlineEndpointEnabled",
    "batchEnabled",
)

# The command line's model options (the v1 model was registered in the workspace; download it
# with `az ml model download` and give its file or folder).
MODEL_OPTIONS = {
    "--model": "modelPath",
    "--model-name": "modelName",
    "--model-version": "modelVersion",
}


def _replicas(value: Any, ctx: Context) -> tuple[Any, ...] | Unmapped:
    """numReplicas: a fixed replica count; v1 turned autoscaling off with it."""
    if ctx.get("autoScaler.autoscaleEnabled") is True:
        return Unmapped(
            "ignored: autoScaler.autoscaleEnabled is true (v1 takes a fixed count or autoscaling)",
            "drop numReplicas, or set autoscaleEnabled to false",
        )
    return (False, value, value)


def _tls(value: Any, _: Context) -> tuple[Any, ...]:
    """sslEnabled: HTTPS only, or (false) the plain HTTP v1 served."""
    return (True, False) if value else (False, True)


def _gpus(value: Any, _: Context) -> tuple[Any, ...] | Unmapped:
    if not value:
        return Unmapped("0: no GPU, as on the CPU pool", built_in=True)
    return (True, "gpu")


INFERENCE: Table = {
    "entryScript": Maps("path", ("entryScript",), x.stack_path_of("entryScript")),
    "condaFile": Maps("path", ("dependenciesFile",), x.stack_path_of("condaFile")),
    "sourceDirectory": Reports("dir", x.source_directory),
    "runtime": Reports("str", x.runtime),
    "extraDockerfileSteps": Reports("path", x.docker_steps),
    "enableGpu": when("bool", x.GPU_IMAGE, Unmapped("CPU image, as here", built_in=True)),
    "cudaVersion": Reports("any", lambda _v, _c: x.GPU_IMAGE),
    "baseImage": fixed("str", *x.BASE_IMAGE, lost=True),
    "baseImageRegistry": fixed("any", *x.BASE_IMAGE_REGISTRY),
    "description": fixed("str", "the image carries labels instead (model, version)"),
    "environment": fixed("object", *x.ENVIRONMENT, lost=True),
    "schemaFile": fixed("any", *x.SCHEMA_FILE),
}

_COMMON: Table = {
    "appInsightsEnabled": when("bool", x.TELEMETRY_ON, x.TELEMETRY_OFF),
    "dataCollection.storageEnabled": Maps("bool", ("dataCollectionEnabled",), same),
    "keys.primaryKey": fixed("str", *x.KEYS),
    "keys.secondaryKey": fixed("str", *x.KEYS),
    "tags": fixed("object", *x.TAGS),
    "properties": fixed("object", *x.TAGS),
    "description": fixed("str", *x.TAGS),
}

ACI: Table = {
    "computeType": Maps("str", ("aciEnabled",), const(True)),
    "containerResourceRequirements.cpu": Maps("number", ("aciCpu",), decimal),
    "containerResourceRequirements.memoryInGB": Maps("number", ("aciMemoryGb",), decimal),
    "location": Maps("str", ("location",), same),
    "authEnabled": when("bool", x.key_auth("aci"), x.no_open_endpoint("aci")),
    "sslEnabled": when("bool", x.ACI_NO_TLS, Unmapped("plain HTTP, as in v1", built_in=True)),
    "sslCertificate": fixed("str", *x.ACI_NO_TLS_TEXT),
    "sslKey": fixed("str", *x.ACI_NO_TLS_TEXT),
    "cname": fixed("str", *x.ACI_NO_TLS_TEXT),
    "dnsNameLabel": fixed("str", *x.ACI_DNS_LABEL),
    **_COMMON,
}

AKS: Table = {
    "computeType": Maps("str", ("aksEnabled",), const(True)),
    "autoScaler.autoscaleEnabled": Maps("bool", ("autoscaleEnabled",), same),
    "autoScaler.minReplicas": Maps("int", ("autoscaleMinReplicas",), same),
    "autoScaler.maxReplicas": Maps("int", ("autoscaleMaxReplicas",), same),
    "autoScaler.targetUtilization": Maps("int", ("autoscaleTargetUtilization",), same),
    "autoScaler.refreshPeriodInSeconds": fixed("int", *x.REFRESH_PERIOD),
    "numReplicas": Maps(
        "int", ("autoscaleEnabled", "autoscaleMinReplicas", "autoscaleMaxReplicas"), _replicas
    ),
    "containerResourceRequirements.cpu": Maps("number", ("aksCpuMillicores",), millicores),
    "containerResourceRequirements.memoryInGB": Maps("number", ("aksMemoryMib",), mebibytes),
    "containerResourceRequirements.cpuLimit": Reports("number", x.cpu_limit),
    "containerResourceRequirements.memoryInGBLimit": Reports("number", x.memory_limit),
    "scoringTimeoutMs": Maps("int", ("scoringTimeoutMs",), same),
    "maxConcurrentRequestsPerContainer": Maps("int", ("maxConcurrentRequestsPerContainer",), same),
    # v1's max_request_wait_time: the host's SCORING_MAX_QUEUE_WAIT_MS, then a 503
    "maxQueueWaitMs": Maps("int", ("maxRequestWaitTimeMs",), same),
    "authEnabled": when("bool", x.key_auth("aks"), x.no_open_endpoint("aks")),
    "tokenAuthEnabled": when("bool", x.TOKEN_AUTH, Unmapped("key auth, as here", built_in=True)),
    "gpuCores": Maps("int", ("acceleratorEnabled", "acceleratorKind"), _gpus),
    "sslEnabled": Maps("bool", ("aksTlsEnabled", "aksAllowHttp"), _tls, x.aks_tls_note),
    "cname": Maps("str", ("aksTlsHost",), same, x.aks_host_note),
    "sslCertificate": fixed("str", *x.AKS_CERTIFICATE),
    "sslKey": fixed("str", *x.AKS_CERTIFICATE),
    "computeTargetName": Reports("str", x.compute_target),
    "namespace": fixed("str", *x.NAMESPACE),
    **{f"livenessProbeRequirements.{p}": fixed("int", *x.PROBES) for p in x.PROBE_FIELDS},
    **_COMMON,
}

LOCAL: Table = {
    "computeType": fixed("str", *x.LOCAL, built_in=True),
    "port": fixed("int", *x.LOCAL_PORT),
}

DEPLOYMENT = {"aci": ACI, "aks": AKS, "local": LOCAL}
