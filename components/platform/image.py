"""A scoring image built with pulumi-docker from the build context the program assembles
(``build_context.py``: the host, the user's entry script and dependencies, the model) and pushed
to the registry.

The tag carries the context's digest, so the same inputs give the same tag and one changed byte
gives a new one. The push logs in with an ACR refresh token exchanged from the deployer's Entra
token (``acr_token.py``), never with an admin password. Targets deploy the image by digest
(``repo_digest``), so a new build rolls out to every target that uses it (the seeds'
``service.update``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.contract import Interfaces
from components.platform.acr_token import ACR_TOKEN_USER, registry_password
from components.platform.build_context import BuildContext


@dataclass(frozen=True)
class ScoringImageArgs:
    login_server: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    repository: str
    context: BuildContext  # build_context.assemble(settings.model, "scoring" | "functions")
    # Resources that must exist before the push (the deployer's AcrPush role assignment).
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)


class ScoringImage(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ScoringImageArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:platform:ScoringImage", name, None, opts)
        ctx = args.context
        image_name = pulumi.Output.concat(args.login_server, "/", args.repository, ":", ctx.tag)
        self.image = docker.Image(
            name,  # unique per ScoringImage: a child's URN carries its parent's type, not its name
            image_name=image_name,
            build=docker.DockerBuildArgs(
                context=str(ctx.path),
                dockerfile=str(ctx.dockerfile),
                platform="linux/amd64",
                args=dict(ctx.build_args),
                # BuildKit builds only the stages the target needs: of scoring/Dockerfile's four
                # pinned bases, the one PYTHON_VERSION names is pulled.
                # https://docs.docker.com/build/building/multi-stage/ (BuildKit builds only the
                # stages the target depends on; the legacy builder builds all of them)
                builder_version=docker.BuilderVersion.BUILDER_BUILD_KIT,
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
        self.tag = ctx.tag
        # <login server>/<repository>@sha256:<digest>: what every target deploys.
        self.ref = self.image.repo_digest
        self.register_outputs(
            {"image_name": image_name, "ref": self.ref, "context_digest": ctx.digest}
        )

    def interfaces(self) -> Interfaces:
        """The ``image`` stack output: what every target deploys."""
        return Interfaces(outputs={"image": self.ref})
