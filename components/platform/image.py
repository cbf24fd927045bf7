"""An image built from ``scoring/`` with pulumi-docker and pushed to the registry.

The push logs in with an ACR refresh token exchanged from the deployer's Entra token
(``acr_token.py``), never with an admin password. Targets deploy the image by digest
(``repo_digest``), so a new build rolls out to every target that uses it (the seeds'
``service.update``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components import PROJECT_ROOT
from components.platform.acr_token import ACR_TOKEN_USER, registry_password

SCORING_DIR = PROJECT_ROOT / "scoring"


@dataclass(frozen=True)
class ScoringImageArgs:
    login_server: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    repository: str
    tag: str
    dockerfile: str = "Dockerfile"
    context: Path = SCORING_DIR
    # Resources that must exist before the push (the deployer's AcrPush role assignment).
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)


class ScoringImage(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ScoringImageArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:platform:ScoringImage", name, None, opts)
        image_name = pulumi.Output.concat(args.login_server, "/", args.repository, ":", args.tag)
        self.image = docker.Image(
            name,  # unique per ScoringImage: a child's URN carries its parent's type, not its name
            image_name=image_name,
            build=docker.DockerBuildArgs(
                context=str(args.context),
                dockerfile=str(args.context / args.dockerfile),
                platform="linux/amd64",
            ),
            registry=docker.RegistryArgs(
                server=args.login_server,
                username=ACR_TOKEN_USER,
                password=registry_password(args.login_server, args.tenant_id),
            ),
            build_on_preview=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.image_name = image_name
        # <login server>/<repository>@sha256:<digest>: what every target deploys.
        self.ref = self.image.repo_digest
        self.register_outputs({"image_name": image_name, "ref": self.ref})
