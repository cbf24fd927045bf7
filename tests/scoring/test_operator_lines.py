"""What operators see, as on azmlinfsrv: its start-up settings block and its access-log line.

The expected formats are azmlinfsrv's own, vendored from azureml-inference-server-http 1.5.1
(MIT, Microsoft; https://pypi.org/project/azureml-inference-server-http/):
``logging.json``'s formatter (``%(asctime)s %(levelname).1s [%(process)d] %(name)s -
%(message)s``, UTC via ``AMLLogFormatter.converter = time.gmtime``, logger ``azmlinfsrv``),
``server/routes.py``'s after-request message (method, path, status, ``{:0.3f}ms``, length) and
``amlserver.py``'s ``print_server_settings`` descriptions.
"""

from __future__ import annotations

import calendar
import logging
import re
import time

from _scoring_support import SCRIPTS, HostFactory

# azureml_inference_server_http/logging.json, formatters.azmlinfsrv.format
REFERENCE_FORMAT = "%(asctime)s %(levelname).1s [%(process)d] %(name)s - %(message)s"
# amlserver.py print_server_settings(): server_env_vars_descriptions, in its order
REFERENCE_SETTINGS = (
    "Entry Script Name",
    "Model Directory",
    "Config File",
    "Worker Count",
    "Worker Timeout (seconds)",
    "Server Port",
    "Health Port",
    "Application Insights Enabled",
    "Application Insights Key",
    "Inferencing HTTP server version",
    "CORS for the specified origins",
    "Create dedicated endpoint for health",
)


def _reference_line(pid: int, message: str, seconds: int, millis: int) -> str:
    formatter = logging.Formatter(REFERENCE_FORMAT)
    formatter.converter = time.gmtime
    record = logging.LogRecord("azmlinfsrv", logging.INFO, __file__, 1, message, None, None)
    # the milliseconds as the line gave them: (created % 1) * 1000 of a float sum is off by one
    # now and then (306 became 305.99..., printed 305)
    record.created, record.msecs, record.process = seconds + millis / 1000, millis, pid
    return formatter.format(record)


def test_the_access_log_line_is_azmlinfsrvs(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "echo_string.py")
    r = host.client.post("/score", content=b"hello")
    assert r.status_code == 200
    deadline = time.monotonic() + 5
    pattern = re.compile(
        r"^(\S+ \S+) I \[(\d+)\] azmlinfsrv - (POST /score 200 (\d+\.\d+)ms (\d+))$"
    )
    found = None
    while found is None and time.monotonic() < deadline:
        found = next(filter(None, map(pattern.match, host.log().splitlines())), None)
        time.sleep(0.1)
    assert found is not None, host.log()
    stamp, pid, message, ms, length = found.groups()
    assert int(length) == len(r.content) and len(ms.split(".")[1]) == 3
    seconds, millis = stamp.split(",")
    created = calendar.timegm(time.strptime(seconds, "%Y-%m-%d %H:%M:%S"))
    assert found.group(0) == _reference_line(int(pid), message, created, int(millis))


def test_the_start_up_lines_are_azmlinfsrvs(start_host: HostFactory) -> None:
    env = {"AML_CORS_ORIGINS": "https://a.example"}
    host = start_host(SCRIPTS / "plain.py", env=env, args=["--worker_count", "2"])
    lines = host.log().splitlines()
    start = lines.index("Server Settings")
    assert lines[start + 1] == "---------------"
    block = dict(line.split(": ", 1) for line in lines[start + 2 : start + 2 + 12])
    assert tuple(block) == REFERENCE_SETTINGS
    assert block["Worker Count"] == "2"
    assert block["Server Port"] == block["Health Port"] == str(host.port)
    assert block["CORS for the specified origins"] == "Enabling CORS for https://a.example"
    assert block["Application Insights Enabled"] == "false"
    assert block["Application Insights Key"] == "None"
    own = lines[start + 14 : start + 17]
    assert own[0] == "Max Concurrent Requests Per Worker: 1"
    assert own[1] == "Max Queue Wait (ms): 500"
    assert f"Score:          POST  127.0.0.1:{host.port}/score" in lines
