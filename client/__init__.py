"""Client for the scoring endpoints a stack exports: ``python -m client score --target aks``."""

from client.errors import (
    AuthRefusedError,
    BadPayloadError,
    ClientError,
    HttpError,
    NotJsonError,
    RetriesExhaustedError,
    TargetOffError,
    UnknownTargetError,
)
from client.outputs import KNOWN_TARGETS, StackOutputs, Target, load_file, load_stack
from client.scoring import RetryPolicy, ScoringClient

__all__ = [
    "KNOWN_TARGETS",
    "AuthRefusedError",
    "BadPayloadError",
    "ClientError",
    "HttpError",
    "NotJsonError",
    "RetriesExhaustedError",
    "RetryPolicy",
    "ScoringClient",
    "StackOutputs",
    "Target",
    "TargetOffError",
    "UnknownTargetError",
    "load_file",
    "load_stack",
]
