"""The deploy-settings file: what a plan does not say and an engine needs (image, storage, ports).

Everything here is the user's to state: pipeplan never guesses an image or a storage location. A
validated, frozen file model (unknown keys fail with the field's name), documented in docs/emit.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageSettings(_Frozen):
    """Per-stage additions for the Kubernetes-side targets."""

    max_replicas: int | None = Field(default=None, ge=1, description="Autoscale from the planned replicas up to "
                                     "this many (HPA / KServe maxReplicas / Seldon maxReplicas / Ray autoscaling).")
    target_cpu_utilization: int | None = Field(default=None, ge=1, le=100,
                                               description="HPA CPU target in percent; required with max_replicas.")
    memory_mb: int | None = Field(default=None, ge=1, description="Memory request and limit of one replica, MiB.")

    @model_validator(mode="after")
    def _target_with_range(self) -> "StageSettings":
        if self.max_replicas is not None and self.target_cpu_utilization is None:
            raise ValueError("max_replicas needs target_cpu_utilization (the HPA's CPU target, percent)")
        return self


class DeploySettings(_Frozen):
    schema_version: Literal[1] = 1
    image: str | None = Field(default=None, description="Container image serving one ONNX stage (Kubernetes "
                              "Deployments); it reads the env variables listed in docs/emit.md.")
    storage_uri: str | None = Field(default=None, description="Where the emitted storage/ folder is uploaded "
                                    "(s3://, gs://, pvc://...); KServe, Seldon and Kubernetes read models there.")
    namespace: str | None = Field(default=None, description="metadata.namespace of every Kubernetes object.")
    container_port: int = Field(default=8080, ge=1, le=65535, description="Port the stage container listens on.")
    ray_http_port: int = Field(default=8000, ge=1, le=65535, description="Ray Serve's HTTP port (on 127.0.0.1).")
    triton_pipeline_instances: int | None = Field(default=None, ge=1, description="Instances of Triton's "
                                                  "pipeline model; default: arrival_rps x slo_ms / 1000.")
    stage_settings: dict[str, StageSettings] = Field(default_factory=dict, description="Per stage, by stage name.")

    def stage(self, name: str) -> StageSettings:
        return self.stage_settings.get(name, StageSettings())
