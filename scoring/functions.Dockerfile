# Function app image (Azure Functions Python v2 model): HTTP, Blob and Service Bus triggers.
# Build context: the folder the program assembles (components/platform/build_context.py):
#   scoring/ (the host)  user-requirements.txt  code/ (the entry script's folder)  model/
# Build arguments (the program passes them): MODEL_NAME, MODEL_VERSION, ENTRY_SCRIPT.
# Layout: /home/site/wwwroot/{function_app.py,host.json,scoring/}; the entry script and the model
# at the same paths as in the scoring image (/var/azureml-app/...), so one score.py runs unchanged.

FROM mcr.microsoft.com/azure-functions/python:4-python3.11
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
