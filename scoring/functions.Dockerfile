# Function app image (Azure Functions Python v2 model): HTTP, Blob and Service Bus triggers.
# Build context: the folder the program assembles (components/platform/build_context.py):
#   scoring/ (the host)  user-requirements.txt  code/ (the entry script's folder)  model/
# Build arguments (the program passes them): PYTHON_VERSION, MODEL_NAME, MODEL_VERSION,
# ENTRY_SCRIPT.
# Layout: /home/site/wwwroot/{function_app.py,host.json,scoring/}; the entry script and the model
# at the same paths as in the scoring image (/var/azureml-app/...), so one score.py runs unchanged.

# The base: the Azure Functions host image of the Python the user's environment names (build
# argument PYTHON_VERSION, as scoring/Dockerfile: mlscore:pythonVersion or the conda python=
# line), one stage per version Azure Functions supports (learn.microsoft.com/azure/azure-functions/
# supported-languages, Python tab: 3.10 to 3.13 GA); components/targets/functions/settings.py
# refuses the others, and a version past its end of support, before any resource. BuildKit pulls
# only the stage PYTHON_VERSION names. The images: github.com/Azure/azure-functions-docker
# host/4/bullseye/amd64/python/python3{10,11} (Debian 11) and host/4/bookworm/python/python3{12,13}
# (Debian 12); each sets FUNCTIONS_WORKER_RUNTIME_VERSION to its Python.
# Digests: the ones public deployment files pin for these tags (found with the code search, not
# read from mcr.microsoft.com here: no registry access); 4-python3.10 has none published that we
# found, so it stays on its tag until one is (docker buildx imagetools inspect gives it).
ARG PYTHON_VERSION=3.11
FROM mcr.microsoft.com/azure-functions/python:4-python3.10 AS python-3.10
FROM mcr.microsoft.com/azure-functions/python:4-python3.11@sha256:ebc5ba1fc20f7809b2676872a016ba6ede2c43d2feab4c22164b6f2a07d75733 AS python-3.11
FROM mcr.microsoft.com/azure-functions/python:4-python3.12@sha256:852c8bb1914e740fcefb3141cfe017a9a9aaec3fe0d4844117119b7b89cc2c01 AS python-3.12
FROM mcr.microsoft.com/azure-functions/python:4-python3.13@sha256:f2486500c134e0b406825b3227a91b2097175d4c6a7008575772514567c9bbd5 AS python-3.13
#checkov:skip=CKV_DOCKER_7: python-${PYTHON_VERSION} names a stage of this file, each pinned above by tag (and digest where published); checkov reads it as an untagged image
# The stage PYTHON_VERSION names, pinned above (hadolint does not expand the ARG in it).
# hadolint ignore=DL3006
FROM python-${PYTHON_VERSION}
ARG MODEL_NAME=model
ARG MODEL_VERSION=1
ARG ENTRY_SCRIPT=score.py
ARG MODEL_SOURCE=""
ARG ENTRY_SCRIPT_SOURCE=""
ARG DEPENDENCIES_SOURCE=""
ARG CONTEXT_DIGEST=""
LABEL io.mlscore.model="${MODEL_NAME}:${MODEL_VERSION} from ${MODEL_SOURCE}" \
      io.mlscore.entry-script="${ENTRY_SCRIPT_SOURCE}" \
      io.mlscore.dependencies="${DEPENDENCIES_SOURCE}" \
      io.mlscore.context-digest="${CONTEXT_DIGEST}"
ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AML_APP_ROOT=/var/azureml-app \
    AZUREML_ENTRY_SCRIPT=/var/azureml-app/code/${ENTRY_SCRIPT} \
    AZUREML_MODEL_DIR=/var/azureml-app/azureml-models/${MODEL_NAME}/${MODEL_VERSION} \
    MODEL_NAME=${MODEL_NAME} \
    MODEL_VERSION=${MODEL_VERSION}
COPY scoring/requirements.txt scoring/requirements-functions.txt /tmp/req/
COPY user-requirements.txt /tmp/req/user.txt
# One resolution of the host's and the user's requirements: a conflict fails the build, naming both.
RUN pip install --no-cache-dir -r /tmp/req/requirements-functions.txt -r /tmp/req/user.txt
COPY scoring /home/site/wwwroot/scoring
COPY scoring/functions/function_app.py scoring/functions/host.json /home/site/wwwroot/
COPY code /var/azureml-app/code
COPY model /var/azureml-app/azureml-models/${MODEL_NAME}/${MODEL_VERSION}
WORKDIR /home/site/wwwroot
# The Functions host writes to its own folder (/azure-functions-host), to the extension bundles
# (/FuncExtensionBundles) and under HOME (/home: data/, LogFiles/, .azurefunctions/): the non-root
# user owns those; the code in wwwroot, the entry script and the model stay root-owned, read-only.
RUN groupadd --system --gid 10001 functions \
    && useradd --system --uid 10001 --gid functions --home-dir /home --shell /usr/sbin/nologin functions \
    && mkdir -p /FuncExtensionBundles /home/data /home/LogFiles /home/.azurefunctions \
    && chown functions:functions /home /home/site \
    && chown -R functions:functions /home/data /home/LogFiles /home/.azurefunctions \
       /azure-functions-host /FuncExtensionBundles
# Non-root cannot bind port 80: the host listens on 8080 (the function app sets WEBSITES_PORT=8080).
ENV ASPNETCORE_URLS=http://+:8080
EXPOSE 8080
USER 10001
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/', timeout=2)"]
