"""What the report says about v1 fields with no stack key: why, and what to do instead.

The texts describe this program (see the modules named in each) and link the v1 behaviour to
what replaced it; ``migrate/table.py`` says which field gets which text.
"""

from __future__ import annotations

from typing import Any

from migrate import paths
from migrate.rules import Context, Convert, Unmapped

# -- inference config ------------------------------------------------------------------------


def stack_path_of(name: str) -> Convert:
    """The resolved path of field ``name``, as the stack file writes it."""
    return lambda _value, ctx: (paths.stack_path(ctx.paths[name]),)


def source_directory(_value: Any, ctx: Context) -> Unmapped:
    """The program copies the entry script's folder into the image (build_context.py), not a
    wider v1 sourceDirectory: say what stays out and what to do."""
    source, script = ctx.paths["sourceDirectory"], ctx.paths.get("entryScript")
    copied = "the entry script's folder is copied into every image (/var/azureml-app/code)"
    if script is None or script.parent.resolve() == source.resolve():
        return Unmapped(f"{copied}: here that is the whole sourceDirectory", built_in=True)
    left_out = paths.files_outside(source, script.parent)
    if not left_out:
        return Unmapped(f"{copied}; sourceDirectory holds nothing outside it", built_in=True)
    sample = ", ".join(f.relative_to(source).as_posix() for f in left_out[:4])
    more = f" and {len(left_out) - 4} more" if len(left_out) > 4 else ""
    inner = script.parent.relative_to(source).as_posix() if script.is_relative_to(source) else ""
    module = ".".join([*inner.split("/"), script.stem]) if inner else script.stem
    return Unmapped(
        f"only part of it reaches the image: {copied} ({paths.shown(script.parent)}), but "
        f"{len(left_out)} file(s) of sourceDirectory lie outside it ({sample}{more}); code "
        "that imports or opens them fails in the image",
        "add an entry script at the top of sourceDirectory that imports the real one, "
        f"e.g. main.py with `from {module} import init, run`, and migrate again with "
        'entryScript "main.py" (then the whole folder is copied), or move what the script '
        "needs into its folder",
        lost=True,
    )


def images_python() -> str:
    """Which Python the images run (components/platform/settings.py reads and checks it)."""
    from components.platform.settings import DEFAULT_PYTHON, PYTHON_VERSIONS

    *first, last = PYTHON_VERSIONS
    return (
        f"the images run the Python the environment names, {', '.join(first)} or {last}: the "
        f"conda file's python= line or mlscore:pythonVersion, else {DEFAULT_PYTHON} "
        "(scoring/Dockerfile and functions.Dockerfile, a pinned base per version)"
    )


def runtime(value: Any, _: Context) -> Unmapped:
    if str(value).lower() == "python":
        return Unmapped(images_python(), built_in=True)
    return Unmapped(
        f"no {value} runtime: {images_python()}, without Spark",
        "score with pandas or numpy in run(); run Spark work outside the scoring service",
        lost=True,
    )


def docker_steps(_value: Any, ctx: Context) -> Unmapped:
    path = ctx.paths["extraDockerfileSteps"]
    text = path.read_text(encoding="utf-8", errors="replace")
    return Unmapped(
        "not applied: every image is built from scoring/Dockerfile, which takes no extra steps",
        "put Python packages in condaFile (dependenciesFile); for a system library or another "
        "image change, add the steps to scoring/Dockerfile and scoring/functions.Dockerfile",
        shown=tuple(f"| {line}" for line in text.splitlines() if line.strip()),
        lost=True,
    )


GPU_IMAGE = Unmapped(
    "no GPU image: every target runs the one image built from scoring/Dockerfile",
    "GPU scoring runs on AKS's accelerator node pool: gpuCores in the AKS deployment config "
    "turns on acceleratorEnabled; install a CUDA-enabled framework from PyPI in condaFile",
    lost=True,
)
BASE_IMAGE = (
    "not applied: the images are built from the scoring host's base (scoring/Dockerfile)",
    "put what the custom image added into condaFile, or change scoring/Dockerfile",
)
BASE_IMAGE_REGISTRY = (
    "not needed: no custom base image; the images go to the stack's own registry",
    "",
)
ENVIRONMENT = (
    "not converted: an inline Azure ML environment",
    "write its python.condaDependencies to a conda file, give it as condaFile and migrate "
    "again; for environmentVariables, put a config.json with them next to the entry script "
    "(the host reads it, as azmlinfsrv does)",
)
SCHEMA_FILE = (
    "not used: /swagger.json comes from the entry script's inference-schema decorators",
    "decorate run() with @input_schema / @output_schema",
)

# -- deployment configs ----------------------------------------------------------------------
TELEMETRY_ON = Unmapped(
    "every target sends telemetry to the program's Application Insights "
    "(APPLICATIONINSIGHTS_CONNECTION_STRING)",
    built_in=True,
)
TELEMETRY_OFF = Unmapped(
    "telemetry is always on where the program's Application Insights exists; it cannot be "
    "turned off per target",
    "nothing to set (request telemetry carries no payloads unless telemetryPayloads is true)",
)
KEYS = (
    "not migrated: the program generates the scoring keys and keeps them in Key Vault (a key "
    "in a config file is a plaintext secret)",
    "clients read the new key from the stack output endpoints.<target>.auth.key",
)
TAGS = ("every resource is tagged project, stack and managed-by instead", "")


def key_auth(target: str) -> Unmapped:
    return Unmapped(
        f"the {target} endpoint always checks a key (Authorization: Bearer <key>; the keys are "
        f"in Key Vault and in the stack output endpoints.{target}.auth)",
        built_in=True,
    )


def no_open_endpoint(target: str) -> Unmapped:
    return Unmapped(
        f"no open endpoint: the {target} endpoint always checks a key",
        f"clients send Authorization: Bearer <key> from the stack output endpoints.{target}.auth",
    )


ACI_NO_TLS_TEXT = (
    "ACI serves plain HTTP here: no certificate or custom domain on the container group",
    "for TLS use the AKS target (aksTlsHost) or App Service (HTTPS built in); keep ACI for "
    "dev/test",
)
ACI_NO_TLS = Unmapped(*ACI_NO_TLS_TEXT)
ACI_DNS_LABEL = (
    "the DNS label is derived: <prefix>-<stack>-aci-<nameSuffix>",
    "read the host from the stack output endpoints.aci.scoring_uri; set nameSuffix to change it",
)
REFRESH_PERIOD = (
    "the autoscaler's own rhythm applies (up at once, down after a minute's stabilisation)",
    "",
)
TOKEN_AUTH = Unmapped(
    "no token auth on AKS here: v1's Azure ML tokens became Microsoft Entra ID tokens on Azure "
    "ML managed online endpoints (auth_mode aad_token)",
    "clients use the AKS key (Authorization: Bearer <key>); this program's online endpoint "
    "(onlineEndpointEnabled) uses key auth too",
)
AKS_CERTIFICATE = (
    "not migrated: the AKS ingress serves a certificate from the workspace's key vault, not "
    "from files",
    "import it (az keyvault certificate import, PEM or PFX with its key) and set "
    "aksTlsCertificateName to its name",
)
NAMESPACE = ("the scoring pods run in the namespace <prefix>-scoring", "")
PROBE_FIELDS = (
    "periodSeconds",
    "initialDelaySeconds",
    "timeoutSeconds",
    "successThreshold",
    "failureThreshold",
)
PROBES = (
    "fixed by the program: a startup probe gives init() up to 5 minutes, then liveness on / "
    "every 15 s (timeout 5 s, 3 failures) and readiness on /ready every 5 s",
    "",
)
LOCAL = (
    "no Azure target: v1's local web service is a local run here",
    "python -m scoring.demo --stack <stack> serves the same build locally (--docker: the image)",
)
LOCAL_PORT = ("the local host takes its port from scoringPort (default 5001)", "")


def cpu_limit(value: Any, ctx: Context) -> Unmapped:
    request = ctx.get("containerResourceRequirements.cpu", 0.1)
    return Unmapped(
        f"the CPU limit is twice the request here: {2 * float(request):g} cores for a request "
        f"of {float(request):g} (v1 limit {float(value):g})",
        "raise containerResourceRequirements.cpu (aksCpuMillicores) if the service needs more",
    )


def memory_limit(value: Any, ctx: Context) -> Unmapped:
    request = ctx.get("containerResourceRequirements.memoryInGB", 0.5)
    return Unmapped(
        f"the memory limit equals the request here: {float(request):g} GB (v1 limit "
        f"{float(value):g} GB)",
        "raise containerResourceRequirements.memoryInGB (aksMemoryMib) to the limit you need",
    )


def aks_tls_note(value: Any, ctx: Context) -> str:
    if not value:
        return (
            "plain HTTP, as v1 served it: the key crosses the network in the clear (dev only); "
            "for production set sslEnabled true with cname, or aksTlsHost and "
            "aksTlsCertificateName"
        )
    return "" if ctx.get("cname") else "HTTPS needs the host name: set aksTlsHost"


def aks_host_note(_value: Any, _: Context) -> str:
    return (
        "import its certificate into the workspace's key vault (az keyvault certificate import) "
        "and set aksTlsCertificateName to its name"
    )


def compute_target(value: Any, _: Context) -> Unmapped:
    return Unmapped(
        f"{value!r} is a name in the v1 workspace; the stack creates its own AKS cluster",
        "to use that cluster instead, set aksExistingClusterId to its resource ID "
        "(/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.ContainerService/"
        "managedClusters/<name>)",
    )
