{{/* istiod.suffix is "-<revision>" or "" for the default revision. */}}
{{- define "istiod.suffix" -}}
{{- if .Values.revision }}-{{ .Values.revision }}{{ end -}}
{{- end -}}

{{/* istiod.rev is the revision, "default" for the default revision. */}}
{{- define "istiod.rev" -}}
{{- .Values.revision | default "default" -}}
{{- end -}}

{{/* istiod.clientConfig is the webhook client config for path $path. */}}
{{- define "istiod.clientConfig" -}}
{{- $root := index . 0 -}}
{{- $path := index . 1 -}}
{{- if $root.Values.injector.url }}
url: {{ printf "%s%s" (trimSuffix "/" $root.Values.injector.url) $path | quote }}
{{- if $root.Values.injector.caBundle }}
caBundle: {{ $root.Values.injector.caBundle | quote }}
{{- end }}
{{- else }}
service:
  name: istiod{{ include "istiod.suffix" $root }}
  namespace: {{ $root.Release.Namespace }}
  path: {{ $path | quote }}
  port: 443
{{- end }}
{{- end -}}

{{/* istiod.injectorWebhooks renders the four injector webhooks for revision
or tag $rev; $default adds the istio-injection=enabled ones. */}}
{{- define "istiod.injectorWebhooks" -}}
{{- $root := index . 0 -}}
{{- $rev := index . 1 -}}
{{- $default := index . 2 -}}
{{- $target := include "istiod.rev" $root -}}
- name: rev.namespace.sidecar-injector.istio.io
  clientConfig:
    {{- include "istiod.clientConfig" (list $root (printf "/inject/%s" $target)) | nindent 4 }}
  rules:
  - operations: ["CREATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
  failurePolicy: {{ $root.Values.sidecarInjectorWebhook.failurePolicy }}
  sideEffects: None
  reinvocationPolicy: Never
  admissionReviewVersions: ["v1"]
  namespaceSelector:
    matchExpressions:
    - key: istio.io/rev
      operator: In
      values: [{{ $rev | quote }}]
    - key: istio-injection
      operator: DoesNotExist
  objectSelector:
    matchExpressions:
    - key: sidecar.istio.io/inject
      operator: NotIn
      values: ["false"]
- name: rev.object.sidecar-injector.istio.io
  clientConfig:
    {{- include "istiod.clientConfig" (list $root (printf "/inject/%s" $target)) | nindent 4 }}
  rules:
  - operations: ["CREATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
  failurePolicy: {{ $root.Values.sidecarInjectorWebhook.failurePolicy }}
  sideEffects: None
  reinvocationPolicy: Never
  admissionReviewVersions: ["v1"]
  namespaceSelector:
    matchExpressions:
    - key: istio.io/rev
      operator: DoesNotExist
    - key: istio-injection
      operator: DoesNotExist
  objectSelector:
    matchExpressions:
    - key: sidecar.istio.io/inject
      operator: NotIn
      values: ["false"]
    - key: istio.io/rev
      operator: In
      values: [{{ $rev | quote }}]
{{- if $default }}
- name: namespace.sidecar-injector.istio.io
  clientConfig:
    {{- include "istiod.clientConfig" (list $root (printf "/inject/%s" $target)) | nindent 4 }}
  rules:
  - operations: ["CREATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
  failurePolicy: {{ $root.Values.sidecarInjectorWebhook.failurePolicy }}
  sideEffects: None
  reinvocationPolicy: Never
  admissionReviewVersions: ["v1"]
  namespaceSelector:
    matchExpressions:
    - key: istio-injection
      operator: In
      values: ["enabled"]
  objectSelector:
    matchExpressions:
    - key: sidecar.istio.io/inject
      operator: NotIn
      values: ["false"]
- name: object.sidecar-injector.istio.io
  clientConfig:
    {{- include "istiod.clientConfig" (list $root (printf "/inject/%s" $target)) | nindent 4 }}
  rules:
  - operations: ["CREATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
  failurePolicy: {{ $root.Values.sidecarInjectorWebhook.failurePolicy }}
  sideEffects: None
  reinvocationPolicy: Never
  admissionReviewVersions: ["v1"]
  namespaceSelector:
    matchExpressions:
    - key: istio-injection
      operator: DoesNotExist
    - key: istio.io/rev
      operator: DoesNotExist
  objectSelector:
    matchExpressions:
    - key: sidecar.istio.io/inject
      operator: In
      values: ["true"]
    - key: istio.io/rev
      operator: DoesNotExist
{{- end }}
{{- end -}}
