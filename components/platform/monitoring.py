"""Monitoring: a Log Analytics workspace and the workspace-based Application Insights on it.

Telemetry ingestion: the targets that run as the pull identity sign in with Microsoft Entra ID;
:meth:`Monitoring.grant_publisher` gives that identity **Monitoring Metrics Publisher** on the
Application Insights component, the role Entra-authenticated ingestion needs
(https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication).

Local (connection-string-only) authentication stays **on** (``disable_local_auth=False``): with
it off, App Insights accepts only Entra-authenticated telemetry, and three senders have no Entra
token to give: the IoT Edge module (a device has no Azure identity), AKS pods until they run
with workload identity, and the Azure ML online endpoint's built-in integration
(``app_insights_enabled``), for which this project found no documented Entra-only mode. Each of
them would lose its telemetry. The connection string is still never an instrumentation key
alone, and reaches the targets as a secret (Key Vault reference, secure environment value).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.applicationinsights as appinsights
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.operationalinsights as loganalytics

from components.contract import ROLE_MONITORING_METRICS_PUBLISHER, role_definition_id
from components.settings import Settings


@dataclass(frozen=True)
class MonitoringArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlscore:platform:Monitoring", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.log_analytics = loganalytics.Workspace(
            "logs",
            workspace_name=s.naming.dashed("logs"),
            resource_group_name=args.resource_group_name,
            location=s.location,
            sku=loganalytics.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=30 if s.stack != "prod" else 90,
            tags=dict(s.tags),
            opts=child,
        )
        self.app_insights = appinsights.Component(
            "appinsights",
            resource_name_=s.naming.dashed("appi"),
            resource_group_name=args.resource_group_name,
            location=s.location,
            kind="web",
            application_type="web",
            ingestion_mode="LogAnalytics",
            workspace_resource_id=self.log_analytics.id,
            disable_local_auth=False,  # see the module docstring: senders without Entra ID
            tags=dict(s.tags),
            opts=child,
        )
        self.log_analytics_id = self.log_analytics.id
        self.app_insights_id = self.app_insights.id
        self.connection_string = pulumi.Output.secret(self.app_insights.connection_string)
        self.register_outputs(
            {"log_analytics_id": self.log_analytics_id, "app_insights_id": self.app_insights_id}
        )

    def grant_publisher(
        self, principal_id: pulumi.Input[str], subscription_id: pulumi.Input[str]
    ) -> authorization.RoleAssignment:
        """Monitoring Metrics Publisher on the App Insights component (Entra-authenticated
        ingestion of all telemetry, not only metrics) for ``principal_id``."""
        return authorization.RoleAssignment(
            "telemetry-publisher",
            principal_id=principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=role_definition_id(
                subscription_id, ROLE_MONITORING_METRICS_PUBLISHER
            ),
            scope=self.app_insights.id,
            opts=pulumi.ResourceOptions(parent=self),
        )
