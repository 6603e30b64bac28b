"""The chart's values, described once: pydantic models whose JSON schema is ``values.schema.json``.

As with the job spec and the model catalog, the schema is generated from a model, never written by
hand. Every object is closed (``extra="forbid"``) except the pass-through blocks (``Open``), whose
content goes to Kubernetes or to the operator chart as it is. What depends on the catalogs (the
accelerator types, the builtin models, the job spec and catalog schemas) is filled in by
``values_schema.py``. Descriptions come from the ``# --`` comments of ``values.yaml``; a field here
carries none. ``None`` defaults only mark a field as optional: defaults live in ``values.yaml``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# A Kubernetes quantity: "4", "16Gi", "500m", or a plain number.
Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9.]+[a-zA-Z]*$")] | Annotated[float, Field(ge=0)]
Labels = dict[str, str]
NonNegative = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Open(BaseModel):
    """A pass-through block: any keys."""

    model_config = ConfigDict(extra="allow")


class Operator(Open):
    enabled: bool


class Image(Closed):
    # Empty passes the schema so that the template's `required` says what to do.
    repository: Annotated[str, StringConstraints(pattern=r"^([a-z0-9][^\s:@]*)?$")]
    tag: str = Field(json_schema_extra={"not": {"const": "latest"}})
    digest: Annotated[str, StringConstraints(pattern=r"^(sha256:[a-f0-9]{64})?$")] = None
    pullPolicy: Literal["IfNotPresent", "Always", "Never"] = None
    bakedModels: list[str] = Field(None, json_schema_extra={"uniqueItems": True})  # items: the builtin models


class Pool(Closed):
    gpusPerNode: Positive = None
    cpu: Quantity = None
    memory: Quantity = None
    shmSize: Quantity = None
    nodeSelector: Labels = None
    tolerations: list = None


class PodSize(Closed):
    cpu: Quantity = None
    memory: Quantity = None
    shmSize: Quantity = None


class Accelerators(Closed):
    nodeSelectorPreset: Literal["gke", "gfd", "karpenter", "eks"] = None
    extraTolerations: list = None
    pools: dict[str, Pool] = None  # keys: the accelerator types
    defaults: PodSize = None


class CpuPool(PodSize):
    nodeSelector: Labels = None
    tolerations: list = None


class Head(Closed):
    resources: dict[str, Any] = None
    rayStartParams: Labels = None
    nodeSelector: Labels = None
    tolerations: list = None
    shmSize: Quantity = None


class Autoscaler(Closed):
    enabled: bool = None
    upscalingMode: Literal["Default", "Conservative", "Aggressive"] = None
    idleTimeoutSeconds: NonNegative = None
    resources: dict[str, Any] = None


class SecretKey(Closed):
    existingSecret: str = None
    key: Annotated[str, StringConstraints(min_length=1)] = None


class Claim(Closed):
    """A PersistentVolumeClaim the chart mounts, and creates unless an existing one is named."""

    enabled: bool = None
    existingClaim: str = None
    size: Quantity = None
    storageClassName: str = None
    accessModes: list[str] = None
    mountPath: Annotated[str, StringConstraints(pattern="^/")] = None


class ModelCache(Claim):
    compileCache: bool = None


class NetworkPolicy(Closed):
    enabled: bool = None
    extraIngress: list = None


class Monitor(Closed):
    enabled: bool = None
    interval: str = None
    labels: Labels = None


class Metrics(Closed):
    serviceMonitor: Monitor = None
    podMonitor: Monitor = None


class Workers(Closed):
    replicas: NonNegative = None
    minReplicas: NonNegative = None
    maxReplicas: Positive = None


class HaProxy(Closed):
    enabled: bool = None
    maxConnections: Positive = None


class Service(Closed):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = None
    port: Annotated[int, Field(ge=1, le=65535)] = None
    annotations: Labels = None


class Ingress(Closed):
    enabled: bool = None
    className: str = None
    annotations: Labels = None
    host: str = None
    tls: list = None


class HttpRoute(Closed):
    enabled: bool = None
    parentRefs: list = None
    hostnames: list[str] = None


class Serving(Closed):
    enabled: bool = None
    catalog: dict[str, Any] = None  # the model catalog's own schema (serve_apps.catalog.ModelCatalog)
    appName: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")] = None
    routePrefix: Annotated[str, StringConstraints(pattern="^/")] = None
    logEncoding: Literal["JSON", "TEXT"] = None
    haproxy: HaProxy = None
    directStreaming: bool = None
    workerGroups: dict[str, Workers] = None  # keys: the accelerator types and cpu
    upgradeStrategy: Literal["NewCluster", "NewClusterWithIncrementalUpgrade", "None"] = None
    clusterUpgradeOptions: dict[str, Any] = None
    deploymentUnhealthySecondThreshold: Positive = None
    serviceUnhealthySecondThreshold: Positive = None
    service: Service = None
    ingress: Ingress = None
    httpRoute: HttpRoute = None
    apiKeys: SecretKey = None


class BatchPvc(Closed):
    create: bool = None
    existingClaim: str = None
    size: Quantity = None
    storageClassName: str = None
    accessModes: list[str] = Field(None, min_length=1)
    mountPath: Annotated[str, StringConstraints(pattern="^/[^:]*$")] = None


class BatchStorage(Closed):
    root: Annotated[str, StringConstraints(pattern=r"^((s3|gs)://[^/\s]+(/\S*)?)?$")] = None
    pvc: BatchPvc = None


class CpuMemory(Closed):
    cpu: Quantity = None
    memory: Quantity = None


class BatchApi(Closed):
    enabled: bool = None
    storage: BatchStorage = None
    envFromSecrets: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        None, json_schema_extra={"uniqueItems": True}
    )
    maxRequestsPerFile: Positive = None
    maxFileBytes: Positive = None
    pollIntervalSeconds: Annotated[float, Field(gt=0)] = None
    retryDelaySeconds: Annotated[float, Field(ge=0)] = None
    acceleratorType: str = None  # "" or an accelerator type
    head: CpuMemory = None
    worker: CpuMemory = None
    ttlSecondsAfterFinished: NonNegative = None
    job: dict[str, Any] = None  # the job spec's schema, every field optional, without what the Batch API sets


class JobSettings(Closed):
    activeDeadlineSeconds: Positive = None
    backoffLimit: NonNegative = None
    ttlSecondsAfterFinished: NonNegative = None
    shutdownAfterJobFinishes: bool = None
    submitterBackoffLimit: NonNegative = None


class BatchJob(JobSettings):
    spec: dict[str, Any]  # the job spec's schema (jobs.spec.JobSpec)
    overrides: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.]*=.*$")]] = None
    workers: Workers = None
    suspend: bool = None


class ChartValues(Closed):
    global_: dict[str, Any] = Field(None, alias="global")
    nameOverride: str = None
    fullnameOverride: str = None
    commonLabels: Labels = None
    kuberay_operator: Operator = Field(None, alias="kuberay-operator")
    image: Image = None
    imagePullSecrets: list[str] = None
    rayVersion: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")] = None
    accelerators: Accelerators = None
    cpuPool: CpuPool = None
    head: Head = None
    autoscaler: Autoscaler = None
    hfToken: SecretKey = None
    modelCache: ModelCache = None
    results: Claim = None
    podSecurityContext: dict[str, Any] = None
    securityContext: dict[str, Any] = None
    extraEnv: list = None
    extraVolumes: list = None
    extraVolumeMounts: list = None
    podAnnotations: Labels = None
    podLabels: Labels = None
    networkPolicy: NetworkPolicy = None
    metrics: Metrics = None
    serving: Serving = None
    batchApi: BatchApi = None
    jobDefaults: JobSettings = None
    batchJobs: dict[str, BatchJob] = None  # keys: DNS-1123 labels of at most 30 characters
