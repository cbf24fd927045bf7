"""The policy pack as the Pulumi CLI runs it: ``policy/__main__.py`` started as a process (it
prints its gRPC port), then spoken to over the Analyzer protocol: the pack's policies, the
per-stack enforcement from ``policy/config.<stack>.json`` (the CLI expands ``all`` to every
policy), and a real violation with that enforcement level."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
LEVELS = {"advisory": 0, "mandatory": 1}  # proto EnforcementLevel values


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    proc = subprocess.Popen(
        [sys.executable, "-u", "__main__.py"],
        cwd=ROOT / "policy",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.isdigit(), f"the pack printed {line!r}; stderr: {proc.stderr.read()[-2000:]}"
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.terminate()
        proc.wait(10)


def configure(stub: analyzer_pb2_grpc.AnalyzerStub, stack: str) -> None:
    """What the CLI does with ``--policy-pack-config policy/config.<stack>.json``."""
    config = json.loads((ROOT / "policy" / f"config.{stack}.json").read_text())
    info = stub.GetAnalyzerInfo(empty_pb2.Empty())
    level = LEVELS[config["all"]]
    stub.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                p.name: analyzer_pb2.PolicyConfig(enforcementLevel=level, properties=None)  # type: ignore[arg-type]
                for p in info.policies
            }
        )
    )


def analyze(stub: analyzer_pb2_grpc.AnalyzerStub, type_: str, props: dict) -> list:
    s = struct_pb2.Struct()
    json_format.ParseDict(props, s)
    req = analyzer_pb2.AnalyzeRequest(type=type_, properties=s, urn=f"urn:x::{type_}::r", name="r")
    return list(stub.Analyze(req).diagnostics)


def test_the_pack_serves_its_policies_mandatory_by_default(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "mlscore-security"
    names = {p.name for p in info.policies}
    assert {"registry-admin-disabled", "no-plaintext-secrets", "aks-min-12-vcpus"} <= names
    assert {p.enforcementLevel for p in info.policies} == {LEVELS["mandatory"]}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_violation_carries_the_stacks_enforcement(analyzer, stack: str):
    configure(analyzer, stack)
    found = analyze(
        analyzer,
        "azure-native:containerregistry:Registry",
        {"adminUserEnabled": True, "sku": {"name": "Basic"}},
    )
    assert [d.policyName for d in found] == ["registry-admin-disabled"]
    expected = "mandatory" if stack == "prod" else "advisory"
    assert found[0].enforcementLevel == LEVELS[expected]
    assert "adminUserEnabled" in found[0].message


def test_a_compliant_resource_has_no_diagnostic(analyzer):
    configure(analyzer, "prod")
    props = {"adminUserEnabled": False, "sku": {"name": "Premium"}}
    assert analyze(analyzer, "azure-native:containerregistry:Registry", props) == []
