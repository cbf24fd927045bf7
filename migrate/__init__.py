"""Migrating an Azure ML SDK/CLI v1 deployment: its inference and deployment configs become a
stack file of this program (``python -m migrate``, see ``migrate/__main__.py``).

- ``v1files.py`` reads the v1 files (JSON, or the YAML form ``az ml model deploy`` took) and
  checks every field's type; ``paths.py`` resolves their paths as v1 did (relative to
  ``sourceDirectory``).
- ``table.py`` is the mapping table, the one place that names stack keys; ``rules.py`` the kinds
  of rule; ``explain.py`` the texts for fields with no key.
- ``convert.py`` applies it (values, rows, conflicts, keys ``Pulumi.yaml`` does not declare
  yet); ``stack.py`` writes ``Pulumi.<stack>.yaml`` and validates it with the program's own
  ``components.settings.load``; ``report.py`` prints one row per v1 field.

The v1 schemas it follows (SDK v1 support ended 30 June 2026, CLI v1 30 September 2025):

- inference config (``inferenceconfig.json``; the JSON entities map to ``InferenceConfig``;
  "your entry_script, conda_file, and extra_docker_file_steps paths are relative paths to the
  source_directory path"): MicrosoftDocs/azure-docs
  includes/machine-learning-service-inference-config.md, shown in
  https://learn.microsoft.com/azure/machine-learning/v1/reference-azure-machine-learning-cli
  #inference-configuration-schema, and
  https://learn.microsoft.com/python/api/azureml-core/azureml.core.model.inferenceconfig
- AKS deployment config (``computeType: aks``, ``autoScaler``, ``dataCollection``,
  ``authEnabled``/``tokenAuthEnabled`` (not both), ``containerResourceRequirements``,
  ``scoringTimeoutMs``, ``maxConcurrentRequestsPerContainer``, ``maxQueueWaitMs``,
  ``numReplicas``, ``keys``, ``gpuCores``, ``livenessProbeRequirements``, ``namespace``):
  includes/machine-learning-service-aks-deploy-config.md, and
  https://learn.microsoft.com/python/api/azureml-core/azureml.core.webservice.aks.aksservicedeploymentconfiguration
  (``cpu_cores_limit``, ``memory_gb_limit``, ``compute_target_name``)
- ACI deployment config (``computeType: aci``, ``containerResourceRequirements``, ``location``,
  ``authEnabled``, ``sslEnabled``, ``appInsightsEnabled``, ``sslCertificate``, ``sslKey``,
  ``cname``, ``dnsNameLabel``): includes/machine-learning-service-aci-deploy-config.md, and
  https://learn.microsoft.com/python/api/azureml-core/azureml.core.webservice.aci.aciservicedeploymentconfiguration
- local (``computeType: local``, ``port``): articles/machine-learning/how-to-deploy-and-where.md
- the YAML form: ``az ml model deploy --ic/--dc`` took "a JSON or YAML file"
  (https://learn.microsoft.com/cli/azure/ml(v1)/model), e.g. MicrosoftDocs/pipelines-azureml
  inferenceConfig.yml and aksDeploymentConfig.yml (``computeType: AKS``, ``True``).
- v1 token auth on AKS became Microsoft Entra ID tokens on managed online endpoints
  (``aad_token``): https://learn.microsoft.com/azure/machine-learning/how-to-authenticate-online-endpoint
"""

import sys
from pathlib import Path

# Imported from anywhere (the console script mlscore-migrate, python -m migrate from a v1
# project's folder): the program's packages (components) sit next to this one.
_PROJECT = str(Path(__file__).resolve().parent.parent)
if _PROJECT not in sys.path:
    sys.path.insert(0, _PROJECT)
