{{/* The chart name, or nameOverride, truncated to 63 characters. */}}
{{- define "tensorflow-serving.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The fully qualified name: fullnameOverride, else the release name when it contains the chart name, else <release>-<name>. */}}
{{- define "tensorflow-serving.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The chart label value: <name>-<version>. */}}
{{- define "tensorflow-serving.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The selector labels (name and instance only: never a version in a selector). */}}
{{- define "tensorflow-serving.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tensorflow-serving.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The common labels: selector labels, chart, version (sanitised image tag), managed-by and component. */}}
{{- define "tensorflow-serving.labels" -}}
helm.sh/chart: {{ include "tensorflow-serving.chart" . }}
{{ include "tensorflow-serving.selectorLabels" . }}
app.kubernetes.io/version: {{ include "tensorflow-serving.imageTag" . | replace "+" "_" | replace ":" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: server
{{- end }}

{{/* The ServiceAccount name: the given name, else fullname when created, else "default". */}}
{{- define "tensorflow-serving.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tensorflow-serving.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when the GPU image flavour is used (explicit flavor, or auto with gpu.count > 0), else "". */}}
{{- define "tensorflow-serving.gpuImage" -}}
{{- if eq .Values.image.flavor "gpu" }}true
{{- else if and (eq .Values.image.flavor "auto") (gt (int .Values.gpu.count) 0) }}true
{{- end }}
{{- end }}

{{/* The image tag, flavour suffix included (image.tag or appVersion, plus gpuTagSuffix for the GPU image). */}}
{{- define "tensorflow-serving.imageTag" -}}
{{- $tag := toString (default .Chart.AppVersion .Values.image.tag) }}
{{- if and (include "tensorflow-serving.gpuImage" .) (not (hasSuffix .Values.image.gpuTagSuffix $tag)) }}
{{- $tag = printf "%s%s" $tag .Values.image.gpuTagSuffix }}
{{- end }}
{{- $tag }}
{{- end }}

{{/* The container image reference: repository:tag, or repository@digest when a digest is set. */}}
{{- define "tensorflow-serving.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "tensorflow-serving.imageTag" .) }}
{{- end }}
{{- end }}

{{/* The Service gRPC port: service.grpcPort, else server.grpcPort. */}}
{{- define "tensorflow-serving.serviceGrpcPort" -}}
{{- int (.Values.service.grpcPort | default .Values.server.grpcPort) }}
{{- end }}

{{/* The Service REST port: service.restPort, else server.restPort. */}}
{{- define "tensorflow-serving.serviceRestPort" -}}
{{- int (.Values.service.restPort | default .Values.server.restPort) }}
{{- end }}

{{/* "true" when service.exposeRest keeps REST off the exposed Service: <fullname> is then ClusterIP and <fullname>-grpc exposes gRPC. */}}
{{- define "tensorflow-serving.splitService" -}}
{{- if and .Values.server.restEnabled (not .Values.service.exposeRest) }}true{{ end }}
{{- end }}

{{/* The name of the Service of type service.type (the one a load balancer or node ports front). */}}
{{- define "tensorflow-serving.exposedServiceName" -}}
{{- $full := include "tensorflow-serving.fullname" . }}
{{- if include "tensorflow-serving.splitService" . }}{{ printf "%s-grpc" $full }}{{ else }}{{ $full }}{{ end }}
{{- end }}

{{/* The exposed Service's annotations: service.annotations plus the ACK cloud controller's for service.alibabaCloud. */}}
{{- define "tensorflow-serving.serviceAnnotations" -}}
{{- $ann := deepCopy (.Values.service.annotations | default dict) }}
{{- with .Values.service.alibabaCloud }}
{{- if .loadBalancerId }}
{{- $_ := set $ann "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-id" .loadBalancerId }}
{{- $_ := set $ann "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-force-override-listeners" (toString .forceOverrideListeners) }}
{{- end }}
{{- end }}
{{- range $k, $v := $ann }}
{{ $k }}: {{ $v | toString | quote }}
{{- end }}
{{- end }}

{{/* The exposed Service's type and load-balancer fields (spec lines before ports). */}}
{{- define "tensorflow-serving.serviceExposure" -}}
type: {{ .Values.service.type }}
{{- with .Values.service.loadBalancerSourceRanges }}
loadBalancerSourceRanges:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.service.loadBalancerClass }}
loadBalancerClass: {{ . }}
{{- end }}
{{- with .Values.service.externalTrafficPolicy }}
externalTrafficPolicy: {{ . }}
{{- end }}
{{- end }}

{{/* The Service port list item for gRPC (argument: dict "root" . "nodePort" bool). */}}
{{- define "tensorflow-serving.serviceGrpcPortItem" -}}
- name: grpc
  port: {{ include "tensorflow-serving.serviceGrpcPort" .root }}
  targetPort: grpc
  protocol: TCP
  appProtocol: grpc
  {{- if and .nodePort (ne .root.Values.service.type "ClusterIP") .root.Values.service.nodePorts.grpc }}
  nodePort: {{ .root.Values.service.nodePorts.grpc }}
  {{- end }}
{{- end }}

{{/* The route of the REST Ingress backend (<namespace>-<service>-<port number>), as ingress-nginx (and SLS) and Traefik name it. */}}
{{- define "tensorflow-serving.ingressRoute" -}}
{{- printf "%s-%s-%s" .Release.Namespace (include "tensorflow-serving.fullname" .) (include "tensorflow-serving.serviceRestPort" .) }}
{{- end }}

{{/* "true" in multi-model mode (model.name empty: the models map, possibly empty, is served from model_config.pbtxt). */}}
{{- define "tensorflow-serving.multiModel" -}}
{{- if not .Values.model.name }}true{{ end }}
{{- end }}

{{/* The base path of model $name with spec $spec (argument: dict root name spec). */}}
{{- define "tensorflow-serving.modelBasePath" -}}
{{- $spec := .spec | default dict }}
{{- $spec.basePath | default (printf "%s/%s" (trimSuffix "/" .root.Values.persistence.mountPath) .name) }}
{{- end }}

{{/* An integer value printed without float formatting (YAML numbers reach templates as float64). */}}
{{- define "tensorflow-serving.int" -}}
{{- printf "%d" (int64 .) }}
{{- end }}

{{/* The names of the served models, in the order the server lists them (sorted), as a JSON list. */}}
{{- define "tensorflow-serving.modelNames" -}}
{{- if .Values.model.name }}
{{- list .Values.model.name | toJson }}
{{- else }}
{{- keys .Values.models | sortAlpha | toJson }}
{{- end }}
{{- end }}

{{/*
A gRPC-framed tensorflow.serving.GetModelStatusRequest {model_spec {name: $}} as a printf(1) format: the frame
header and protobuf tags and lengths as octal escapes, then the name (validated to [a-zA-Z0-9_.-], no escapes).
One-byte lengths: names of up to 123 bytes.
*/}}
{{- define "tensorflow-serving.grpcModelStatusRequest" -}}
{{- $n := len . }}
{{- range (list 0 0 0 0 (add $n 4) 10 (add $n 2) 10 $n) }}{{ printf "\\%03o" . }}{{ end }}{{ . }}
{{- end }}

{{/* The text-format tensorflow.serving.ModelServerConfig rendered from the models map. */}}
{{- define "tensorflow-serving.modelConfig" -}}
model_config_list {
{{- range $name, $spec := .Values.models }}
{{- $spec = $spec | default dict }}
  config {
    name: {{ $name | quote }}
    base_path: {{ include "tensorflow-serving.modelBasePath" (dict "root" $ "name" $name "spec" $spec) | quote }}
    model_platform: {{ $spec.platform | default "tensorflow" | quote }}
{{- with $spec.versionPolicy }}
    model_version_policy {
{{- if hasKey . "all" }}
      all {}
{{- else if hasKey . "latest" }}
      latest {
        num_versions: {{ include "tensorflow-serving.int" (.latest.numVersions | default 1) }}
      }
{{- else if hasKey . "specific" }}
      specific {
{{- range .specific.versions }}
        versions: {{ include "tensorflow-serving.int" . }}
{{- end }}
      }
{{- end }}
    }
{{- end }}
{{- range $label, $version := $spec.versionLabels }}
    version_labels {
      key: {{ $label | quote }}
      value: {{ include "tensorflow-serving.int" $version }}
    }
{{- end }}
  }
{{- end }}
}
{{- end }}

{{/* The text-format BatchingParameters file (--batching_parameters_file). */}}
{{- define "tensorflow-serving.batchingConfig" -}}
{{- $b := .Values.server.batching -}}
max_batch_size { value: {{ include "tensorflow-serving.int" $b.maxBatchSize }} }
batch_timeout_micros { value: {{ include "tensorflow-serving.int" $b.batchTimeoutMicros }} }
max_enqueued_batches { value: {{ include "tensorflow-serving.int" $b.maxEnqueuedBatches }} }
num_batch_threads { value: {{ include "tensorflow-serving.int" $b.numBatchThreads }} }
{{- range $b.allowedBatchSizes }}
allowed_batch_sizes: {{ include "tensorflow-serving.int" . }}
{{- end }}
pad_variable_length_inputs: {{ $b.padVariableLengthInputs }}
{{- end }}

{{/* The text-format MonitoringConfig file (--monitoring_config_file) enabling the Prometheus endpoint. */}}
{{- define "tensorflow-serving.monitoringConfig" -}}
prometheus_config {
  enable: true
  path: {{ .Values.server.monitoring.path | quote }}
}
{{- end }}

{{/* The path of the SSLConfig file the init container assembles (--ssl_config_file). */}}
{{- define "tensorflow-serving.sslConfigPath" -}}
{{- printf "%s/ssl_config.pbtxt" (trimSuffix "/" .Values.server.tls.mountPath) }}
{{- end }}

{{/* Where the init container mounts the server.tls Secret (only the init container sees it). */}}
{{- define "tensorflow-serving.tlsSecretPath" -}}
/var/run/tfserving/tls-secret
{{- end }}

{{/*
The init container script that writes the text-format tensorflow.serving.SSLConfig from the mounted Secret:
each PEM line becomes one string literal ("line\n"; adjacent literals concatenate in the text format), with
quotes and backslashes escaped. Paths are relative to workingDir "/", so the chart's tests run the same
script in a scratch directory. Nothing secret is printed.
*/}}
{{- define "tensorflow-serving.tlsInitScript" -}}
{{- $t := .Values.server.tls -}}
set -eu
umask 077
src={{ include "tensorflow-serving.tlsSecretPath" . | trimPrefix "/" | squote }}
out={{ include "tensorflow-serving.sslConfigPath" . | trimPrefix "/" | squote }}
need() {
  if [ ! -s "$src/$1" ]; then
    echo "server.tls.$2: Secret {{ $t.secretName }} has no key $1 (or it is empty)" >&2
    exit 1
  fi
}
pem() {
  sed -e 's/\r$//' -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/  "/' -e 's/$/\\n"/' "$src/$1"
}
need {{ $t.certKey | squote }} certKey
need {{ $t.keyKey | squote }} keyKey
{{- if $t.clientVerify }}
need {{ $t.caKey | squote }} caKey
{{- end }}
{
  echo "server_key:"
  pem {{ $t.keyKey | squote }}
  echo "server_cert:"
  pem {{ $t.certKey | squote }}
{{- if $t.caKey }}
  if [ -s "$src/"{{ $t.caKey | squote }} ]; then
    echo "custom_ca:"
    pem {{ $t.caKey | squote }}
  fi
{{- end }}
  echo "client_verify: {{ $t.clientVerify }}"
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote /$out from Secret {{ $t.secretName }} (client_verify: {{ $t.clientVerify }})"
{{- end }}

{{/* "true" when the config ConfigMap is rendered (multi-model mode, batching or monitoring). */}}
{{- define "tensorflow-serving.configMapEnabled" -}}
{{- if or (include "tensorflow-serving.multiModel" .) .Values.server.batching.enabled .Values.server.monitoring.enabled }}true{{ end }}
{{- end }}

{{/* A scalar for a command-line flag: integers without float formatting, everything else as a string. */}}
{{- define "tensorflow-serving.flagValue" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- end }}

{{/* The server's command-line flags, as a YAML list. */}}
{{- define "tensorflow-serving.args" -}}
{{- $s := .Values.server }}
{{- $cfg := trimSuffix "/" .Values.modelConfig.mountPath }}
{{- $args := list (printf "--port=%d" (int $s.grpcPort)) }}
{{- if $s.restEnabled }}
{{- $args = append $args (printf "--rest_api_port=%d" (int $s.restPort)) }}
{{- if $s.restApiTimeoutMs }}
{{- $args = append $args (printf "--rest_api_timeout_in_ms=%d" (int64 $s.restApiTimeoutMs)) }}
{{- end }}
{{- end }}
{{- if .Values.model.name }}
{{- $args = append $args (printf "--model_name=%s" .Values.model.name) }}
{{- $args = append $args (printf "--model_base_path=%s" (include "tensorflow-serving.modelBasePath" (dict "root" . "name" .Values.model.name "spec" (dict "basePath" .Values.model.basePath)))) }}
{{- else }}
{{- $args = append $args (printf "--model_config_file=%s/model_config.pbtxt" $cfg) }}
{{- $args = append $args (printf "--model_config_file_poll_wait_seconds=%d" (int .Values.modelConfig.pollWaitSeconds)) }}
{{- if .Values.modelConfig.allowVersionLabelsForUnavailableModels }}
{{- $args = append $args "--allow_version_labels_for_unavailable_models=true" }}
{{- end }}
{{- end }}
{{- $args = append $args (printf "--file_system_poll_wait_seconds=%d" (int $s.fileSystemPollWaitSeconds)) }}
{{- if $s.batching.enabled }}
{{- $args = append $args "--enable_batching=true" }}
{{- $args = append $args (printf "--batching_parameters_file=%s/batching_parameters.pbtxt" $cfg) }}
{{- end }}
{{- if $s.monitoring.enabled }}
{{- $args = append $args (printf "--monitoring_config_file=%s/monitoring_config.pbtxt" $cfg) }}
{{- end }}
{{- if $s.tls.enabled }}
{{- $args = append $args (printf "--ssl_config_file=%s" (include "tensorflow-serving.sslConfigPath" .)) }}
{{- end }}
{{- with $s.threading }}
{{- if .intraOpParallelism }}{{ $args = append $args (printf "--tensorflow_intra_op_parallelism=%d" (int .intraOpParallelism)) }}{{ end }}
{{- if .interOpParallelism }}{{ $args = append $args (printf "--tensorflow_inter_op_parallelism=%d" (int .interOpParallelism)) }}{{ end }}
{{- if .sessionParallelism }}{{ $args = append $args (printf "--tensorflow_session_parallelism=%d" (int .sessionParallelism)) }}{{ end }}
{{- if .restApiNumThreads }}{{ $args = append $args (printf "--rest_api_num_threads=%d" (int .restApiNumThreads)) }}{{ end }}
{{- end }}
{{- with $s.grpcChannelArguments }}
{{- $pairs := list }}
{{- range $k, $v := . }}
{{- $pairs = append $pairs (printf "%s=%s" $k (include "tensorflow-serving.flagValue" $v)) }}
{{- end }}
{{- $args = append $args (printf "--grpc_channel_arguments=%s" (join "," $pairs)) }}
{{- end }}
{{- range $s.extraArgs }}
{{- $args = append $args (toString .) }}
{{- end }}
{{- toYaml $args }}
{{- end }}

{{/* The readiness/startup HTTP path: probes.readiness.path, else the REST status of the first model, else "". */}}
{{- define "tensorflow-serving.readinessPath" -}}
{{- if .Values.probes.readiness.path }}
{{- .Values.probes.readiness.path }}
{{- else }}
{{- $names := include "tensorflow-serving.modelNames" . | fromJsonArray }}
{{- if $names }}
{{- printf "/v1/models/%s" (first $names) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The probe handler shared by readiness and startup: HTTP model status over REST, else TCP on a serving port. */}}
{{- define "tensorflow-serving.readinessHandler" -}}
{{- $path := include "tensorflow-serving.readinessPath" . }}
{{- if and .Values.server.restEnabled $path }}
httpGet:
  path: {{ $path }}
  port: rest
{{- else if .Values.server.restEnabled }}
tcpSocket:
  port: rest
{{- else }}
tcpSocket:
  port: grpc
{{- end }}
{{- end }}

{{/* The container resources with gpu.count merged into limits. */}}
{{- define "tensorflow-serving.resources" -}}
{{- $res := deepCopy (.Values.resources | default dict) }}
{{- if gt (int .Values.gpu.count) 0 }}
{{- $limits := deepCopy (get $res "limits" | default dict) }}
{{- $_ := set $limits .Values.gpu.resourceName (int .Values.gpu.count) }}
{{- $_ := set $res "limits" $limits }}
{{- end }}
{{- toYaml $res }}
{{- end }}

{{/* "true" when ECI placement is expressed with virtual-node tolerations and node affinity. */}}
{{- define "tensorflow-serving.eciVirtualNode" -}}
{{- if and (ne .Values.eci.mode "ecs-only") (eq .Values.eci.scheduling "virtualNode") }}true{{ end }}
{{- end }}

{{/* The pod tolerations: tolerations plus the virtual-node toleration for ECI placement. */}}
{{- define "tensorflow-serving.tolerations" -}}
{{- $tol := .Values.tolerations | default list }}
{{- if include "tensorflow-serving.eciVirtualNode" . }}
{{- $tol = append $tol (dict "key" .Values.eci.virtualNode.taintKey "operator" "Equal" "value" .Values.eci.virtualNode.taintValue "effect" "NoSchedule") }}
{{- end }}
{{- if $tol }}{{ toYaml $tol }}{{ end }}
{{- end }}

{{/* The pod affinity: affinity with the ECI virtual-node term (required for eci-only, preferred-not for burst) and the podAntiAffinity term merged. */}}
{{- define "tensorflow-serving.affinity" -}}
{{- $aff := deepCopy (.Values.affinity | default dict) }}
{{- with .Values.podAntiAffinity.mode }}
{{- $paa := get $aff "podAntiAffinity" | default dict }}
{{- $term := dict "topologyKey" $.Values.podAntiAffinity.topologyKey "labelSelector" (dict "matchLabels" (include "tensorflow-serving.selectorLabels" $ | fromYaml)) }}
{{- if eq . "required" }}
{{- $_ := set $paa "requiredDuringSchedulingIgnoredDuringExecution" (append (get $paa "requiredDuringSchedulingIgnoredDuringExecution" | default list) $term) }}
{{- else }}
{{- $_ := set $paa "preferredDuringSchedulingIgnoredDuringExecution" (append (get $paa "preferredDuringSchedulingIgnoredDuringExecution" | default list) (dict "weight" 100 "podAffinityTerm" $term)) }}
{{- end }}
{{- $_ := set $aff "podAntiAffinity" $paa }}
{{- end }}
{{- if include "tensorflow-serving.eciVirtualNode" . }}
{{- $vn := .Values.eci.virtualNode }}
{{- $na := get $aff "nodeAffinity" | default dict }}
{{- if eq .Values.eci.mode "eci-only" }}
{{- $expr := dict "key" $vn.labelKey "operator" "In" "values" (list $vn.labelValue) }}
{{- $req := get $na "requiredDuringSchedulingIgnoredDuringExecution" | default dict }}
{{- $terms := list }}
{{- range ($req.nodeSelectorTerms | default (list dict)) }}
{{- $terms = append $terms (merge (dict "matchExpressions" (append (.matchExpressions | default list) $expr)) .) }}
{{- end }}
{{- $_ := set $req "nodeSelectorTerms" $terms }}
{{- $_ := set $na "requiredDuringSchedulingIgnoredDuringExecution" $req }}
{{- else }}
{{- $pref := get $na "preferredDuringSchedulingIgnoredDuringExecution" | default list }}
{{- $term := dict "weight" 100 "preference" (dict "matchExpressions" (list (dict "key" $vn.labelKey "operator" "NotIn" "values" (list $vn.labelValue)))) }}
{{- $_ := set $na "preferredDuringSchedulingIgnoredDuringExecution" (append $pref $term) }}
{{- end }}
{{- $_ := set $aff "nodeAffinity" $na }}
{{- end }}
{{- if $aff }}{{ toYaml $aff }}{{ end }}
{{- end }}

{{/* A Kubernetes quantity (e.g. 2Gi, 500M, 1e9) in bytes, as an integer string; "0" for empty input. */}}
{{- define "tensorflow-serving.bytes" -}}
{{- $q := toString (. | default "0") }}
{{- $units := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "K" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?([eE][0-9]+)?" $q | default "0" }}
{{- $suffix := trimPrefix $num $q }}
{{- printf "%d" (int64 (mulf (float64 $num) (float64 (get $units $suffix | default 1)))) }}
{{- end }}

{{/* The pod annotations: checksums where a restart is the reload mechanism, scrape, ECI and user annotations. */}}
{{- define "tensorflow-serving.podAnnotations" -}}
{{- $ann := dict }}
{{- $server := "" }}
{{- if .Values.server.batching.enabled }}{{ $server = printf "%s%s" $server (include "tensorflow-serving.batchingConfig" .) }}{{ end }}
{{- if .Values.server.monitoring.enabled }}{{ $server = printf "%s%s" $server (include "tensorflow-serving.monitoringConfig" .) }}{{ end }}
{{- if $server }}
{{- $_ := set $ann "checksum/server-config" ($server | sha256sum) }}
{{- end }}
{{- if and (include "tensorflow-serving.multiModel" .) (eq (int .Values.modelConfig.pollWaitSeconds) 0) }}
{{- $_ := set $ann "checksum/model-config" (include "tensorflow-serving.modelConfig" . | sha256sum) }}
{{- end }}
{{- if and .Values.server.monitoring.enabled .Values.server.monitoring.scrapeAnnotations }}
{{- $_ := set $ann "prometheus.io/scrape" "true" }}
{{- $_ := set $ann "prometheus.io/port" (toString (int .Values.server.restPort)) }}
{{- $_ := set $ann "prometheus.io/path" .Values.server.monitoring.path }}
{{- end }}
{{- if and (ne .Values.eci.mode "ecs-only") (eq .Values.eci.scheduling "annotation") }}
{{- $_ := set $ann "alibabacloud.com/burst-resource" (ternary "eci_only" "eci" (eq .Values.eci.mode "eci-only")) }}
{{- end }}
{{- with .Values.eci.useSpecs }}
{{- $_ := set $ann "k8s.aliyun.com/eci-use-specs" (join "," .) }}
{{- end }}
{{- if .Values.eci.imageCache.enabled }}
{{- if .Values.eci.imageCache.id }}
{{- $_ := set $ann "k8s.aliyun.com/eci-imc-id" .Values.eci.imageCache.id }}
{{- else }}
{{- $_ := set $ann "k8s.aliyun.com/eci-auto-imc" "true" }}
{{- end }}
{{- end }}
{{- $ann = merge (deepCopy (.Values.podAnnotations | default dict)) $ann }}
{{- range $k, $v := $ann }}
{{ $k }}: {{ $v | toString | quote }}
{{- end }}
{{- end }}

{{/* One ServiceMonitor endpoint / PodMonitor podMetricsEndpoint: the rest port at server.monitoring.path. Takes (dict "root" $ "monitor" .Values.metrics.<kind>). */}}
{{- define "tensorflow-serving.scrapeEndpoint" -}}
{{- $m := .monitor -}}
port: rest
path: {{ .root.Values.server.monitoring.path }}
scheme: http
{{- with $m.interval }}
interval: {{ . }}
{{- end }}
{{- with $m.scrapeTimeout }}
scrapeTimeout: {{ . }}
{{- end }}
{{- if $m.honorLabels }}
honorLabels: true
{{- end }}
{{- with $m.relabelings }}
relabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $m.metricRelabelings }}
metricRelabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Milliseconds of a Prometheus duration such as 1m30s (the schema checks its form); "" gives 0. */}}
{{- define "tensorflow-serving.durationMs" -}}
{{- $units := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000 "w" 604800000 "y" 31536000000 }}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+(ms|[smhdwy])" (toString .) -1 }}
{{- $unit := regexFind "(ms|[smhdwy])$" . }}
{{- $total = add $total (mul (int64 (trimSuffix $unit .)) (get $units $unit)) }}
{{- end }}
{{- $total }}
{{- end }}

{{/* Labels of the canary Job's objects: a name of their own, so the Service and the server's selectors never pick up the Job's pod. */}}
{{- define "tensorflow-serving.canaryLabels" -}}
helm.sh/chart: {{ include "tensorflow-serving.chart" . }}
app.kubernetes.io/name: {{ printf "%s-canary" (include "tensorflow-serving.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: canary
{{- end }}

{{/* The canary Job's name: <fullname>-canary-<version>, so each version's analysis is its own Job. */}}
{{- define "tensorflow-serving.canaryJobName" -}}
{{- $suffix := printf "-canary-%v" (.Values.canary.version | toString) }}
{{- printf "%s%s" (include "tensorflow-serving.fullname" . | trunc (int (sub 63 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{/* The canary Job's ServiceAccount (and Role, RoleBinding) name. */}}
{{- define "tensorflow-serving.canaryServiceAccountName" -}}
{{- printf "%s-canary" (include "tensorflow-serving.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{/* The model the canary Job analyses: canary.model, else model.name, else the only key of models. */}}
{{- define "tensorflow-serving.canaryModel" -}}
{{- if .Values.canary.model }}
{{- .Values.canary.model }}
{{- else if .Values.model.name }}
{{- .Values.model.name }}
{{- else if eq (len (keys .Values.models)) 1 }}
{{- keys .Values.models | first }}
{{- end }}
{{- end }}

{{/* Fails with one line naming the value to change when the canary Job cannot run as configured. */}}
{{- define "tensorflow-serving.validateCanary" -}}
{{- $c := .Values.canary }}
{{- $model := include "tensorflow-serving.canaryModel" . }}
{{- if not $c.job.image.repository }}
{{- fail "canary.job.image.repository is required with canary.job.enabled: build the toolkit image with docker build -f images/tfsctl/Dockerfile -t <registry>/tfsctl:<version> . and push it" }}
{{- end }}
{{- if not $c.job.image.tag }}
{{- fail "canary.job.image.tag is required with canary.job.enabled (the tfsctl version of the image)" }}
{{- end }}
{{- if kindIs "invalid" $c.version }}
{{- fail "canary.version is required with canary.job.enabled: the version to judge against stable" }}
{{- end }}
{{- if not $model }}
{{- fail (printf "canary.model is required with canary.job.enabled when models has %d models" (len (keys .Values.models))) }}
{{- end }}
{{- $known := .Values.model.name | default "" }}
{{- if and (ne $model $known) (not (hasKey .Values.models $model)) }}
{{- fail (printf "canary.model (%s) is not a model of this release (models: %s)" $model (keys .Values.models | sortAlpha | join ", ")) }}
{{- end }}
{{- $spec := $c.spec | default dict }}
{{- $stable := $spec.stableLabel | default "stable" }}
{{- if hasKey .Values.models $model }}
{{- $labels := (index .Values.models $model).versionLabels | default dict }}
{{- if not (hasKey $labels $stable) }}
{{- fail (printf "canary: models.%s.versionLabels has no %s label to judge canary.version against" $model $stable) }}
{{- end }}
{{- end }}
{{- end }}
