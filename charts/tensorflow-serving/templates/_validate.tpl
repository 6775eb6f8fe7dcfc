{{/* Fails with one line naming the values to change when a cross-field rule (one the schema cannot express) is broken. */}}
{{- define "tensorflow-serving.validateValues" -}}
{{- $v := .Values }}
{{- $s := $v.server }}
{{- $errors := list }}

{{- /* models */}}
{{- if and $v.model.name $v.models }}
{{- $errors = append $errors (printf "model.name (%s) and models are both set: use model.name for one model or models for several, not both" $v.model.name) }}
{{- end }}
{{- $bp := $v.model.basePath }}
{{- if and $bp (not (hasPrefix "/" $bp)) (not (contains "://" $bp)) }}
{{- $errors = append $errors (printf "model.basePath (%s) must be an absolute path or a URL such as gs://bucket/model" $bp) }}
{{- end }}
{{- range $name, $spec := $v.models }}
{{- $spec = $spec | default dict }}
{{- if not (regexMatch "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$" $name) }}
{{- $errors = append $errors (printf "models: model name %q must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (it is used in REST paths)" $name) }}
{{- end }}
{{- $bp := $spec.basePath | default "" }}
{{- if and $bp (not (hasPrefix "/" $bp)) (not (contains "://" $bp)) }}
{{- $errors = append $errors (printf "models.%s.basePath (%s) must be an absolute path or a URL such as gs://bucket/model" $name $bp) }}
{{- end }}
{{- $policy := $spec.versionPolicy | default dict }}
{{- range $label, $version := $spec.versionLabels }}
{{- if not (regexMatch "^[a-zA-Z0-9_]+$" $label) }}
{{- $errors = append $errors (printf "models.%s.versionLabels: label name %q is outside [a-zA-Z0-9_]+, the names tfsctl promote and rollback manage (TF Serving itself accepts any name)" $name $label) }}
{{- end }}
{{- if hasKey $policy "specific" }}
{{- $versions := list }}
{{- range $policy.specific.versions }}{{ $versions = append $versions (int64 .) }}{{ end }}
{{- if not (has (int64 $version) $versions) }}
{{- $errors = append $errors (printf "models.%s.versionLabels: label %s -> %d but version %d is not in models.%s.versionPolicy.specific.versions %v" $name $label (int64 $version) (int64 $version) $name $versions) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $spec.versionLabels (not $v.modelConfig.allowVersionLabelsForUnavailableModels) }}
{{- $errors = append $errors (printf "models.%s.versionLabels needs modelConfig.allowVersionLabelsForUnavailableModels: true (TF Serving assigns labels before it loads versions, so a starting pod would fail)" $name) }}
{{- end }}
{{- if hasKey $policy "specific" }}
{{- if ne (len ($policy.specific.versions | uniq)) (len $policy.specific.versions) }}
{{- $errors = append $errors (printf "models.%s.versionPolicy.specific.versions has duplicates" $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq (trimSuffix "/" $v.modelConfig.mountPath) (trimSuffix "/" $v.persistence.mountPath) }}
{{- $errors = append $errors (printf "modelConfig.mountPath (%s) must differ from persistence.mountPath: the ConfigMap volume would hide the models" $v.modelConfig.mountPath) }}
{{- end }}

{{- /* metrics */}}
{{- range $kind := list "serviceMonitor" "podMonitor" }}
{{- if and (get $v.metrics $kind).enabled (not $s.monitoring.enabled) }}
{{- $errors = append $errors (printf "metrics.%s.enabled needs server.monitoring.enabled: true (TF Serving serves no Prometheus endpoint without it)" $kind) }}
{{- end }}
{{- $m := get $v.metrics $kind }}
{{- if and $m.enabled $m.interval $m.scrapeTimeout }}
{{- if gt (include "tensorflow-serving.durationMs" $m.scrapeTimeout | int64) (include "tensorflow-serving.durationMs" $m.interval | int64) }}
{{- $errors = append $errors (printf "metrics.%s.scrapeTimeout (%s) is longer than metrics.%s.interval (%s): Prometheus rejects the scrape config" $kind $m.scrapeTimeout $kind $m.interval) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $v.metrics.serviceMonitor.enabled $v.metrics.podMonitor.enabled }}
{{- $errors = append $errors "metrics.serviceMonitor.enabled and metrics.podMonitor.enabled would scrape the same pods twice: enable one" }}
{{- end }}

{{- /* ports */}}
{{- if and $s.restEnabled (eq (int $s.grpcPort) (int $s.restPort)) }}
{{- $errors = append $errors (printf "server.grpcPort and server.restPort are both %d: give each its own port" (int $s.grpcPort)) }}
{{- end }}
{{- $sg := include "tensorflow-serving.serviceGrpcPort" . | int }}
{{- $sr := include "tensorflow-serving.serviceRestPort" . | int }}
{{- if and $s.restEnabled (eq $sg $sr) }}
{{- $errors = append $errors (printf "service.grpcPort and service.restPort both resolve to %d: give each its own port" $sg) }}
{{- end }}
{{- if and $v.service.nodePorts.grpc (eq (int $v.service.nodePorts.grpc) (int $v.service.nodePorts.rest)) }}
{{- $errors = append $errors (printf "service.nodePorts.grpc and service.nodePorts.rest are both %d" (int $v.service.nodePorts.grpc)) }}
{{- end }}
{{- if and (eq $v.service.type "ClusterIP") (or $v.service.nodePorts.grpc $v.service.nodePorts.rest) }}
{{- $errors = append $errors "service.nodePorts needs service.type NodePort or LoadBalancer (it is ClusterIP)" }}
{{- end }}
{{- if and (ne $v.service.type "LoadBalancer") (or $v.service.loadBalancerSourceRanges $v.service.loadBalancerClass) }}
{{- $errors = append $errors (printf "service.loadBalancerSourceRanges/loadBalancerClass need service.type LoadBalancer (it is %s)" $v.service.type) }}
{{- end }}
{{- if and (eq $v.service.type "ClusterIP") (not $v.service.exposeRest) }}
{{- $errors = append $errors "service.exposeRest false keeps REST off a NodePort or LoadBalancer, but service.type is ClusterIP" }}
{{- end }}
{{- $alb := $v.service.alibabaCloud }}
{{- if and $alb.loadBalancerId (ne $v.service.type "LoadBalancer") }}
{{- $errors = append $errors (printf "service.alibabaCloud.loadBalancerId needs service.type LoadBalancer (it is %s)" $v.service.type) }}
{{- end }}
{{- if and $alb.forceOverrideListeners (not $alb.loadBalancerId) }}
{{- $errors = append $errors "service.alibabaCloud.forceOverrideListeners needs service.alibabaCloud.loadBalancerId (it only applies to a reused SLB)" }}
{{- end }}
{{- range $key := list "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-id" "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-force-override-listeners" }}
{{- if and $alb.loadBalancerId (hasKey ($v.service.annotations | default dict) $key) }}
{{- $errors = append $errors (printf "service.annotations sets %s and service.alibabaCloud.loadBalancerId sets it too: keep service.alibabaCloud" $key) }}
{{- end }}
{{- end }}
{{- if and (eq $v.service.type "ClusterIP") $v.service.externalTrafficPolicy }}
{{- $errors = append $errors "service.externalTrafficPolicy needs service.type NodePort or LoadBalancer (it is ClusterIP)" }}
{{- end }}
{{- if not $s.restEnabled }}
{{- if $s.monitoring.enabled }}
{{- $errors = append $errors "server.monitoring.enabled needs server.restEnabled: the Prometheus endpoint is served on the REST port" }}
{{- end }}
{{- if $v.ingress.enabled }}
{{- $errors = append $errors "ingress.enabled routes to the REST port but server.restEnabled is false (use ingress.grpc for gRPC)" }}
{{- end }}
{{- if $v.probes.readiness.path }}
{{- $errors = append $errors "probes.readiness.path is an HTTP path but server.restEnabled is false" }}
{{- end }}
{{- end }}

{{- /* image and GPUs */}}
{{- $gpus := int $v.gpu.count }}
{{- if and (eq $v.image.flavor "gpu") (eq $gpus 0) }}
{{- $errors = append $errors "image.flavor is gpu but gpu.count is 0: request GPUs or use image.flavor auto/cpu" }}
{{- end }}
{{- if and (eq $v.image.flavor "cpu") (gt $gpus 0) }}
{{- $errors = append $errors (printf "image.flavor is cpu but gpu.count is %d: the CPU image cannot use GPUs (use image.flavor auto)" $gpus) }}
{{- end }}
{{- if and (contains "gpu" (toString $v.image.tag)) (eq $gpus 0) }}
{{- $errors = append $errors (printf "image.tag (%s) is a GPU image but gpu.count is 0: set gpu.count or drop the GPU tag" $v.image.tag) }}
{{- end }}
{{- if and (not (contains "gpu" (toString $v.image.tag))) (gt $gpus 0) (eq $v.image.flavor "auto") (not $v.image.gpuTagSuffix) }}
{{- $errors = append $errors "gpu.count > 0 needs image.gpuTagSuffix (or a GPU image.tag) so a GPU image runs" }}
{{- end }}
{{- /* TF Serving 1.15.0 is the first release whose main.cc has every flag the args helper renders
(--model_config_file_poll_wait_seconds and --allow_version_labels_for_unavailable_models came last).
A tag that is not a release number (latest, nightly) or a digest counts as current. */}}
{{- $tag := toString (default $.Chart.AppVersion $v.image.tag) }}
{{- if and (not $v.image.digest) (regexMatch "^[0-9]+\\.[0-9]+\\.[0-9]+(-.*)?$" $tag) (semverCompare "<1.15.0-0" $tag) }}
{{- $errors = append $errors (printf "image.tag (%s) is older than 1.15.0, the oldest TF Serving whose flags this chart renders: use image.tag 1.15.0 or newer" $tag) }}
{{- end }}
{{- $limits := ($v.resources | default dict).limits | default dict }}
{{- $requests := ($v.resources | default dict).requests | default dict }}
{{- if or (hasKey $limits $v.gpu.resourceName) (hasKey $requests $v.gpu.resourceName) }}
{{- $errors = append $errors (printf "resources sets %s directly: use gpu.count so the GPU image is selected" $v.gpu.resourceName) }}
{{- end }}

{{- /* replicas and autoscaling */}}
{{- $a := $v.autoscaling }}
{{- if $a.enabled }}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) }}
{{- $errors = append $errors (printf "autoscaling.minReplicas (%d) > autoscaling.maxReplicas (%d)" (int $a.minReplicas) (int $a.maxReplicas)) }}
{{- end }}
{{- if not (or $a.targetCPUUtilizationPercentage $a.targetMemoryUtilizationPercentage $a.externalMetrics $a.slsIngressQps.enabled $a.prometheusQps.enabled) }}
{{- $errors = append $errors "autoscaling.enabled needs a metric: autoscaling.targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage, externalMetrics, slsIngressQps or prometheusQps" }}
{{- end }}
{{- if and $a.targetCPUUtilizationPercentage (not (hasKey $requests "cpu")) }}
{{- $errors = append $errors "autoscaling.targetCPUUtilizationPercentage needs resources.requests.cpu (utilization is a share of requests)" }}
{{- end }}
{{- if and $a.targetMemoryUtilizationPercentage (not (hasKey $requests "memory")) }}
{{- $errors = append $errors "autoscaling.targetMemoryUtilizationPercentage needs resources.requests.memory (utilization is a share of requests)" }}
{{- end }}
{{- end }}
{{- if $a.slsIngressQps.enabled }}
{{- if not $a.enabled }}
{{- $errors = append $errors "autoscaling.slsIngressQps.enabled needs autoscaling.enabled (the HPA carries the metric)" }}
{{- end }}
{{- if not $v.ingress.enabled }}
{{- $errors = append $errors "autoscaling.slsIngressQps.enabled needs ingress.enabled: its sls.ingress.route is the chart's Ingress backend" }}
{{- end }}
{{- if not $a.slsIngressQps.project }}
{{- $errors = append $errors "autoscaling.slsIngressQps.project is empty: set the cluster's SLS project (k8s-log-<cluster id>)" }}
{{- end }}
{{- end }}
{{- if $a.prometheusQps.enabled }}
{{- if not $a.enabled }}
{{- $errors = append $errors "autoscaling.prometheusQps.enabled needs autoscaling.enabled (the HPA carries the metric)" }}
{{- end }}
{{- if and (eq $a.prometheusQps.source "ingress") (not $v.ingress.enabled) }}
{{- $errors = append $errors "autoscaling.prometheusQps.source ingress needs ingress.enabled: its route is the chart's Ingress backend (or use source pods)" }}
{{- end }}
{{- if and (eq $a.prometheusQps.source "pods") (not $v.server.monitoring.enabled) }}
{{- $errors = append $errors "autoscaling.prometheusQps.source pods needs server.monitoring.enabled: TF Serving exports its request counter only then" }}
{{- end }}
{{- end }}
{{- range $i, $m := $a.externalMetrics }}
{{- if and (not $m.targetAverageValue) (not $m.targetValue) }}
{{- $errors = append $errors (printf "autoscaling.externalMetrics[%d] (%s) has no target: set targetAverageValue or targetValue" $i $m.name) }}
{{- end }}
{{- if and $m.targetAverageValue $m.targetValue }}
{{- $errors = append $errors (printf "autoscaling.externalMetrics[%d] (%s) sets both targetAverageValue and targetValue: keep one" $i $m.name) }}
{{- end }}
{{- end }}
{{- $pdb := $v.podDisruptionBudget }}
{{- if and $pdb.enabled (ne (toString $pdb.minAvailable) "") (ne (toString $pdb.maxUnavailable) "") }}
{{- $errors = append $errors "podDisruptionBudget.minAvailable and podDisruptionBudget.maxUnavailable are both set: keep one" }}
{{- end }}
{{- if and (eq (int $v.updateStrategy.maxSurge) 0) (eq (int $v.updateStrategy.maxUnavailable) 0) }}
{{- $errors = append $errors "updateStrategy.maxSurge and updateStrategy.maxUnavailable are both 0: a rolling update could never progress" }}
{{- end }}
{{- if ge (int $v.preStop.sleepSeconds) (int $v.terminationGracePeriodSeconds) }}
{{- $errors = append $errors (printf "preStop.sleepSeconds (%d) must be < terminationGracePeriodSeconds (%d) so the server gets SIGTERM in time" (int $v.preStop.sleepSeconds) (int $v.terminationGracePeriodSeconds)) }}
{{- end }}

{{- /* ECI */}}
{{- if eq $v.eci.mode "ecs-only" }}
{{- if $v.eci.useSpecs }}
{{- $errors = append $errors "eci.useSpecs has no effect with eci.mode ecs-only: set eci.mode burst or eci-only" }}
{{- end }}
{{- if $v.eci.imageCache.enabled }}
{{- $errors = append $errors "eci.imageCache.enabled has no effect with eci.mode ecs-only: set eci.mode burst or eci-only" }}
{{- end }}
{{- end }}

{{- /* storage */}}
{{- $p := $v.persistence }}
{{- if $p.enabled }}
{{- if and $p.existingClaim $p.pv.enabled }}
{{- $errors = append $errors "persistence.existingClaim and persistence.pv.enabled are both set: a created PV would not be bound to the existing claim" }}
{{- end }}
{{- if and (not $p.existingClaim) (not $p.pv.enabled) (not $p.storageClassName) (not $p.selector.matchLabels) (not $p.volumeName) }}
{{- $errors = append $errors "persistence.selector.matchLabels is empty: with storageClassName \"\" the claim would bind any free PV (set the PV's labels, volumeName, existingClaim or pv.enabled)" }}
{{- end }}
{{- if and $p.existingClaim $p.volumeName }}
{{- $errors = append $errors "persistence.volumeName and persistence.existingClaim are both set: the chart creates no claim to bind by name" }}
{{- end }}
{{- $pvName := $p.pv.name | default (printf "%s-models" (include "tensorflow-serving.fullname" $)) }}
{{- if and $p.pv.enabled $p.volumeName (ne $p.volumeName $pvName) }}
{{- $errors = append $errors (printf "persistence.volumeName (%s) names another PV than the one persistence.pv creates (%s)" $p.volumeName $pvName) }}
{{- end }}
{{- if $p.pv.enabled }}
{{- if not (or $p.selector.matchLabels $p.volumeName) }}
{{- $errors = append $errors "persistence.pv.enabled needs persistence.selector.matchLabels or persistence.volumeName: they tie the claim to the PV" }}
{{- end }}
{{- if and (eq $p.pv.type "nfs") (not $p.pv.nfs.server) }}
{{- $errors = append $errors "persistence.pv.nfs.server is empty (persistence.pv.type is nfs)" }}
{{- end }}
{{- if and (eq $p.pv.type "nasCsi") (not $p.pv.nasCsi.server) }}
{{- $errors = append $errors "persistence.pv.nasCsi.server is empty (persistence.pv.type is nasCsi)" }}
{{- end }}
{{- if eq $p.pv.type "ossCsi" }}
{{- if not $p.pv.ossCsi.bucket }}
{{- $errors = append $errors "persistence.pv.ossCsi.bucket is empty (persistence.pv.type is ossCsi)" }}
{{- end }}
{{- if not $p.pv.ossCsi.url }}
{{- $errors = append $errors "persistence.pv.ossCsi.url is empty (persistence.pv.type is ossCsi)" }}
{{- end }}
{{- if not $p.pv.ossCsi.secretRef.name }}
{{- $errors = append $errors "persistence.pv.ossCsi.secretRef.name is empty: OSS credentials come only from a Secret with akId and akSecret" }}
{{- end }}
{{- end }}
{{- end }}
{{- else if $p.pv.enabled }}
{{- $errors = append $errors "persistence.pv.enabled needs persistence.enabled" }}
{{- end }}

{{- /* batching */}}
{{- $b := $s.batching }}
{{- if and $b.enabled $b.allowedBatchSizes }}
{{- $previous := int64 0 }}
{{- range $b.allowedBatchSizes }}
{{- if le (int64 .) $previous }}
{{- $errors = append $errors (printf "server.batching.allowedBatchSizes must be strictly increasing: %d follows %d" (int64 .) $previous) }}
{{- end }}
{{- $previous = int64 . }}
{{- end }}
{{- if ne (int64 (last $b.allowedBatchSizes)) (int64 $b.maxBatchSize) }}
{{- $errors = append $errors (printf "server.batching.allowedBatchSizes must end with server.batching.maxBatchSize (%d), not %d" (int64 $b.maxBatchSize) (int64 (last $b.allowedBatchSizes))) }}
{{- end }}
{{- end }}

{{- if and (not $s.restEnabled) $v.tests.enabled }}
{{- range (include "tensorflow-serving.modelNames" . | fromJsonArray) }}
{{- if gt (len .) 123 }}
{{- $errors = append $errors (printf "model name %s is longer than 123 bytes: the gRPC helm test (server.restEnabled false) cannot check it; set tests.enabled false" .) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* TLS (gRPC) */}}
{{- $t := $s.tls }}
{{- if $t.enabled }}
{{- if not $t.secretName }}
{{- $errors = append $errors "server.tls.enabled needs server.tls.secretName: an existing Secret with the PEM certificate and key (type kubernetes.io/tls)" }}
{{- end }}
{{- if and $t.clientVerify (not $t.caKey) }}
{{- $errors = append $errors "server.tls.clientVerify needs server.tls.caKey: the Secret key of the CA that signs client certificates" }}
{{- end }}
{{- if or (eq $t.certKey $t.keyKey) (eq $t.certKey $t.caKey) (eq $t.keyKey $t.caKey) }}
{{- $errors = append $errors (printf "server.tls.certKey (%s), server.tls.keyKey (%s) and server.tls.caKey (%s) must name different Secret keys" $t.certKey $t.keyKey $t.caKey) }}
{{- end }}
{{- $tm := trimSuffix "/" $t.mountPath }}
{{- if or (eq $tm (trimSuffix "/" $v.modelConfig.mountPath)) (eq $tm (trimSuffix "/" $v.persistence.mountPath)) }}
{{- $errors = append $errors (printf "server.tls.mountPath (%s) must differ from modelConfig.mountPath and persistence.mountPath" $t.mountPath) }}
{{- end }}
{{- else if $t.clientVerify }}
{{- $errors = append $errors "server.tls.clientVerify needs server.tls.enabled: without it gRPC is plaintext and no client is verified" }}
{{- end }}

{{- if $errors }}
{{- fail (first $errors) }}
{{- end }}
{{- end }}
