"""Start Microsoft's azmlinfsrv unchanged except for the bind address (127.0.0.1, not 0.0.0.0).

azmlinfsrv hard-codes 0.0.0.0; the benchmark only listens on loopback. Arguments as azmlinfsrv's.
"""

import sys

from azureml_inference_server_http import amlserver

amlserver.DEFAULT_HOST = "127.0.0.1"

if __name__ == "__main__":
    sys.argv[0] = "azmlinfsrv"
    amlserver.run()
