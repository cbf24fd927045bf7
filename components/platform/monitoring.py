"""Monitoring: a Log Analytics workspace and the workspace-based Application Insights on it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.applicationinsights as appinsights
import pulumi_azure_native.operationalinsights as loganalytics

from components.config.settings import Settings


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
            disable_local_auth=False,
            tags=dict(s.tags),
            opts=child,
        )
        self.log_analytics_id = self.log_analytics.id
        self.app_insights_id = self.app_insights.id
        self.connection_string = pulumi.Output.secret(self.app_insights.connection_string)
        self.register_outputs(
            {"log_analytics_id": self.log_analytics_id, "app_insights_id": self.app_insights_id}
        )
