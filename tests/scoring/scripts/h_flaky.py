"""init() or run() fails while the file named by H_FAIL_FILE says so ("init" / "run"): a failure
that passes once the file is gone. Otherwise run() echoes its input."""

import os


def _failing() -> str:
    path = os.environ.get("H_FAIL_FILE", "")
    if path and os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    return ""


def init():
    if _failing() == "init":
        raise RuntimeError("init failed (transient)")


def run(raw_data):
    if _failing() == "run":
        raise RuntimeError("run failed (transient)")
    return {"echo": raw_data}


# inference-schema keys its registry by "<module>.run", and every entry script is imported as
# "entry_module": in a process that loaded a schema-decorated script before (the sample model,
# earlier in the same test session) this plain run() would look decorated.
run.__module__ = "h_flaky"
