"""Microsoft's documented v1 files, verbatim, and a v1 project laid out around them.

- ``inferenceconfig.json``: MicrosoftDocs/azure-docs
  includes/machine-learning-service-inference-config.md
- ``aks.json``: includes/machine-learning-service-aks-deploy-config.md ("autoscaling 1-3 at 70%,
  data collection and auth")
- ``aci.json``: includes/machine-learning-service-aci-deploy-config.md (0.5 CPU, 1 GB)
- the YAML form: MicrosoftDocs/pipelines-azureml inferenceConfig.yml, aksDeploymentConfig.yml,
  deploymentConfig.yml (what ``az ml model deploy --ic/--dc`` took as "a JSON or YAML file")
"""

from __future__ import annotations

from pathlib import Path

from components import PROJECT_ROOT

INFERENCE_JSON = """{
    "entryScript": "score.py",
    "runtime": "python",
    "condaFile": "myenv.yml",
    "extraDockerfileSteps": null,
    "sourceDirectory": null,
    "enableGpu": false,
    "baseImage": null,
    "baseImageRegistry": null
}
"""

AKS_JSON = """{
    "computeType": "aks",
    "autoScaler":
    {
        "autoscaleEnabled": true,
        "minReplicas": 1,
        "maxReplicas": 3,
        "refreshPeriodInSeconds": 1,
        "targetUtilization": 70
    },
    "dataCollection":
    {
        "storageEnabled": true
    },
    "authEnabled": true,
    "containerResourceRequirements":
    {
        "cpu": 0.5,
        "memoryInGB": 1.0
    }
}
"""

ACI_JSON = """{
    "computeType": "aci",
    "containerResourceRequirements":
    {
        "cpu": 0.5,
        "memoryInGB": 1.0
    },
    "authEnabled": true,
    "sslEnabled": false,
    "appInsightsEnabled": false
}
"""

INFERENCE_YAML = """entryScript: score.py
runtime: python
condaFile: myenv.yml
extraDockerfileSteps:
schemaFile:
sourceDirectory:
enableGpu: False
baseImage:
baseImageRegistry:
"""

AKS_YAML = """computeType: AKS
autoScaler:
    autoscaleEnabled: True
    minReplicas: 1
    maxReplicas: 3
    refreshPeriodInSeconds: 10
    targetUtilization: 70
authEnabled: True
containerResourceRequirements:
    cpu: 1
    memoryInGB: 0.5
appInsightsEnabled: False
scoringTimeoutMs: 1000
maxConcurrentRequestsPerContainer: 2
maxQueueWaitMs: 1000
sslEnabled: False
"""

ACI_YAML = """---
containerResourceRequirements:
  cpu: 1
  memoryInGB: 1
computeType: ACI"""

# A conda environment file as the v1 docs wrote them, on the images' Python.
MYENV = """name: project_environment
dependencies:
  - python=3.11
  - pip:
    - scikit-learn==1.9.1
    - joblib
    - numpy
"""
# The seeds' own myenv.yml (Python 3.6.2, azureml-defaults).
SEEDS_MYENV = """name: project_environment
dependencies:
  - python=3.6.2
  - pip:
    - azureml-defaults
    - scikit-learn
    - inference-schema[numpy-support]
"""

SCORE = (PROJECT_ROOT / "examples" / "v1" / "source" / "score.py").read_text()
MODEL = PROJECT_ROOT / "aml" / "model" / "diabetes-ridge" / "1" / "model.joblib"


def project(root: Path, files: dict[str, str]) -> Path:
    """A v1 project folder: score.py and myenv.yml, plus ``files`` (name -> text)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in {"score.py": SCORE, "myenv.yml": MYENV, **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root
