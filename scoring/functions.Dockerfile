# Function app image (Azure Functions Python v2 model): HTTP, Blob and Service Bus triggers.
# Build context: the scoring/ directory.  docker build -f functions.Dockerfile -t scoring-fn .
# Layout in the image: /home/site/wwwroot/{function_app.py,host.json,scoring/}; the sample model
# is trained at build time into /home/site/models (Azure ML layout).

FROM mcr.microsoft.com/azure-functions/python:4-python3.11
ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AZUREML_ENTRY_SCRIPT=/home/site/wwwroot/scoring/sample_model/score.py \
    AZUREML_MODEL_DIR=/home/site/models
COPY requirements.txt requirements-functions.txt /tmp/req/
RUN pip install --no-cache-dir -r /tmp/req/requirements-functions.txt
COPY . /home/site/wwwroot/scoring
COPY functions/function_app.py functions/host.json /home/site/wwwroot/
WORKDIR /home/site/wwwroot
RUN python -m scoring.sample_model.train --out /home/site/models \
    && groupadd --system --gid 10001 functions \
    && useradd --system --uid 10001 --gid functions --home-dir /home/site --shell /usr/sbin/nologin functions \
    && chown -R functions:functions /home/site
# Non-root cannot bind port 80: the host listens on 8080 (the function app sets WEBSITES_PORT=8080).
ENV ASPNETCORE_URLS=http://+:8080
EXPOSE 8080
USER 10001
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/', timeout=2)"]
