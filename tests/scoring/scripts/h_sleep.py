"""run() sleeps for the requested seconds: in Python (``sleep``) or in native code (``native``,
libc's sleep through ctypes, which a timeout's async exception cannot interrupt); or spins in
pure Python (``spin``: that many steps, 0 = for ever)."""

import ctypes
import json
import time

_libc = ctypes.CDLL(None)


def init():
    pass


def run(raw_data):
    request = json.loads(raw_data)
    if "native" in request:
        _libc.sleep(int(request["native"]))
        return {"native": request["native"]}
    if "spin" in request:
        n, total, i = int(request["spin"]), 0, 0
        while n == 0 or i < n:
            total += i
            i += 1
        return {"total": total}
    seconds = float(request.get("sleep", 0))
    time.sleep(seconds)
    return {"slept": seconds}


# inference-schema keys its registry by "<module>.run" and every entry script is imported as
# "entry_module": after a schema-decorated script in the same process, this one would look
# decorated too.
run.__module__ = "h_sleep"
