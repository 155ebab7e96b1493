#!/usr/bin/env bash
# chart-lint: checks the Helm chart, the kustomize bases and the Argo CD example, offline once the
# tools and schemas are cached (`make chart-lint`; CI runs it too).
#
#   1. `helm lint --strict` of charts/switchboard with the default values and each ci/*-values.yaml.
#   2. `helm template` with the same values sets | `kubeconform -strict`: every object (Deployments,
#      Services, RBAC, PDB, NetworkPolicy, CRDs, ServiceMonitor, PrometheusRule) against real schemas;
#      unknown fields are errors.
#   3. Guard rails: values that must be refused are refused (schema and template checks), RBAC has
#      no wildcards, the chart never renders the operator's ConfigMap.
#   4. `kustomize build --enable-helm` of config/kustomize/base and overlays/* | kubeconform.
#   5. kubeconform of config/argocd/application.yaml and config/samples/*.yaml.
#
# Tools (pinned below) are built from the Go module proxy into
# ${SWITCHBOARD_TOOLS:-$HOME/.cache/switchboard/tools}, once: helm (with the version stamps its own
# Makefile sets, so `helm version` and the default Kubernetes version match the release binaries),
# kubeconform, kustomize. First run: a few minutes on 2 cores with a cold Go build cache, plus the
# module downloads below (zips: k8s.io/kubernetes 19 MB, argo-cd 56 MB, prometheus-operator 4 MB);
# later runs: a few seconds.
#
# Schemas: kubeconform downloads schemas from GitHub by default, which does not work offline, so this
# script makes its own and passes them with -schema-location. `schemagen` (a small Go program kept
# below in this file, built once) converts, without any network:
#   - built-in kinds: the OpenAPI v2 document api/openapi-spec/swagger.json of the k8s.io/kubernetes
#     module at KUBERNETES_VERSION (the e2e control plane's version, usually already in the module
#     cache),
#   - ServiceMonitor and PrometheusRule: the CRDs in the prometheus-operator module's
#     example/prometheus-operator-crd/,
#   - Argo CD's Application: manifests/crds/application-crd.yaml of the argo-cd module,
#   - our CRDs: charts/switchboard/templates/crds/*.yaml, converted on every run (they change with
#     the code).
# The converted third-party schemas are cached under TOOLS/schemas/<versions+generator hash>/. The
# schemas are strict (unknown fields rejected, as the API server's strict field validation does);
# CEL rules (x-kubernetes-validations) are not evaluated here (the e2e tests run them on a real
# apiserver). Nothing is skipped: a kind without a schema fails the lint.
#
# Environment: SWITCHBOARD_TOOLS (tool and schema cache), GO (default `go`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
KUSTOMIZE_VERSION=v5.8.2
# Schemas and `helm template --kube-version`: the Kubernetes release the e2e tests run.
KUBERNETES_VERSION=v1.35.4
PROMETHEUS_OPERATOR_VERSION=v0.85.0
ARGOCD_VERSION=v3.5.7

TOOLS=${SWITCHBOARD_TOOLS:-$HOME/.cache/switchboard/tools}
GO=${GO:-go}
CHART=charts/switchboard
RELEASE=switchboard
NAMESPACE=switchboard

mkdir -p "$TOOLS"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

start=$SECONDS
step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - start))"; }
die() { echo "chart-lint: $*" >&2; exit 1; }

command -v "$GO" >/dev/null 2>&1 || die "Go is needed to build helm, kubeconform and kustomize from the module proxy"

# One lock for installs and schema generation, so parallel runs build once.
exec 9>"$TOOLS/.chart-lint.lock"
flock 9

# module_dir MODULE@VERSION: the module's folder in the Go module cache (downloaded if missing).
module_dir() {
    (cd "$WORK" && GOFLAGS=-mod=mod "$GO" mod download -json "$1") | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}

# go_install NAME VERSION PACKAGE@VERSION [go install flags...]: builds into TOOLS/NAME-VERSION/.
go_install() {
    local name=$1 version=$2 pkg=$3
    shift 3
    local dir="$TOOLS/$name-$version"
    [[ -x $dir/$name ]] && return
    echo "installing $name $version (go install $pkg)"
    rm -rf "$dir.tmp"
    (cd "$WORK" && GOBIN="$dir.tmp" CGO_ENABLED=0 "$GO" install -trimpath "$@" "$pkg")
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
}

step "tools"
# Helm's Makefile stamps its version and the Kubernetes version of its client-go (1.<minor>) as the
# default for `helm template`/`helm lint`; a plain `go install` would leave v1.20.
helm_gomod=$(cd "$WORK" && "$GO" mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
k8s_minor=$(sed -n 's/^\tk8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$helm_gomod")
[[ -n $k8s_minor ]] || die "cannot read helm's client-go version from $helm_gomod"
go_install helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"
go_install kubeconform "$KUBECONFORM_VERSION" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" -ldflags "-s -w"
go_install kustomize "$KUSTOMIZE_VERSION" "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" -ldflags "-s -w"
HELM="$TOOLS/helm-$HELM_VERSION/helm"
KUBECONFORM="$TOOLS/kubeconform-$KUBECONFORM_VERSION/kubeconform"
KUSTOMIZE="$TOOLS/kustomize-$KUSTOMIZE_VERSION/kustomize"
"$HELM" version --short
echo "kubeconform $KUBECONFORM_VERSION, kustomize $KUSTOMIZE_VERSION"

step "schemas"
# schemagen's sources; the binary is cached by their hash.
mkdir -p "$WORK/schemagen"
cat > "$WORK/schemagen/go.mod" <<'EOF'
module switchboard.dev/schemagen

go 1.26

require (
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.2
	sigs.k8s.io/yaml v1.6.0
)

require (
	go.yaml.in/yaml/v2 v2.4.2 // indirect
	golang.org/x/text v0.14.0 // indirect
)
EOF
cat > "$WORK/schemagen/go.sum" <<'EOF'
github.com/dlclark/regexp2 v1.11.0 h1:G/nrcoOa7ZXlpoa/91N3X7mM3r8eIlMBBJZvsz/mxKI=
github.com/dlclark/regexp2 v1.11.0/go.mod h1:DHkYz0B9wPfa6wondMfaivmHpzrQ3v9q8cnmRbL6yW8=
github.com/google/go-cmp v0.5.9 h1:O2Tfq5qg4qc4AmwVlvv0oLiVAGB7enBSJ2x2DqQFi38=
github.com/google/go-cmp v0.5.9/go.mod h1:17dUlkBOakJ0+DkrSSNjCkIjxS6bF9zb3elmeNGIjoY=
github.com/santhosh-tekuri/jsonschema/v6 v6.0.2 h1:KRzFb2m7YtdldCEkzs6KqmJw4nqEVZGK7IN2kJkjTuQ=
github.com/santhosh-tekuri/jsonschema/v6 v6.0.2/go.mod h1:JXeL+ps8p7/KNMjDQk3TCwPpBy0wYklyWTfbkIzdIFU=
go.yaml.in/yaml/v2 v2.4.2 h1:DzmwEr2rDGHl7lsFgAHxmNz/1NlQ7xLIrlN2h5d1eGI=
go.yaml.in/yaml/v2 v2.4.2/go.mod h1:081UH+NErpNdqlCXm3TtEran0rJZGxAYx9hb/ELlsPU=
go.yaml.in/yaml/v3 v3.0.3 h1:bXOww4E/J3f66rav3pX3m8w6jDE4knZjGOw8b5Y6iNE=
go.yaml.in/yaml/v3 v3.0.3/go.mod h1:tBHosrYAkRZjRAOREWbDnBXUf08JOwYq++0QNwQiWzI=
golang.org/x/text v0.14.0 h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=
golang.org/x/text v0.14.0/go.mod h1:18ZOQIKpY8NJVqYksKHtTdi31H5itFRjB5/qKTNYzSU=
gopkg.in/check.v1 v0.0.0-20161208181325-20d25e280405 h1:yhCVgyC4o1eVCa2tZl7eS0r+SDo693bJlVdllGtEeKM=
gopkg.in/check.v1 v0.0.0-20161208181325-20d25e280405/go.mod h1:Co6ibVJAznAaIkqp8huTwlJQCZ016jof/cbN4VW5Yz0=
sigs.k8s.io/yaml v1.6.0 h1:G8fkbMSAFqgEFgh4b1wmtzDnioxFCUgTZhlbj5P9QYs=
sigs.k8s.io/yaml v1.6.0/go.mod h1:796bPqUfzR/0jLAl6XjHl3Ck7MiyVv8dbTdyT3/pMf4=
EOF
cat > "$WORK/schemagen/main.go" <<'EOF'
// schemagen writes kubeconform JSON schemas (strict: unknown fields are errors) from the
// Kubernetes OpenAPI v2 document and from CustomResourceDefinition YAML files, offline.
//
//	schemagen -out DIR [-swagger swagger.json] [-builtins=false] [CRD.yaml ...]
//
// -swagger loads the built-in definitions (also used for a CRD's metadata); -builtins=false skips
// writing the built-in kinds, to convert only the given CRDs.
//
// Layout: DIR/<group>/<kind>-<version>.json, the group being the version for the core group
// ("v1/service-v1.json", "apps/deployment-v1.json"), i.e. kubeconform's
// -schema-location 'DIR/{{ .Group }}/{{ .ResourceKind }}-{{ .ResourceAPIVersion }}.json'.
// Each file holds the kind's schema and, under "definitions", every definition it references.
// Objects with properties reject unknown fields unless x-kubernetes-preserve-unknown-fields;
// int-or-string and quantities take both forms. Optional fields of built-in kinds accept null (the
// API server reads null as absent); in CRDs only `nullable: true` fields do, as in the API server.
// Every schema is compiled (draft 4, as kubeconform does) before it is written.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

type schema = map[string]any

const refPrefix = "#/definitions/"
const objectMeta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

func main() {
	out := flag.String("out", "", "output folder")
	swagger := flag.String("swagger", "", "Kubernetes OpenAPI v2 document (api/openapi-spec/swagger.json)")
	builtins := flag.Bool("builtins", true, "write a schema for every built-in kind of -swagger")
	flag.Parse()
	if *out == "" {
		fail("-out is required")
	}
	defs := map[string]any{}
	if *swagger != "" {
		raw, err := os.ReadFile(*swagger)
		check(err)
		var doc struct {
			Definitions map[string]any `json:"definitions"`
		}
		check(json.Unmarshal(raw, &doc))
		defs = doc.Definitions
		for name, d := range defs {
			defs[name] = fixBuiltin(name, d.(schema))
		}
		count := 0
		for _, name := range sortedKeys(defs) {
			if !*builtins {
				break
			}
			d := defs[name].(schema)
			gvks, _ := d["x-kubernetes-group-version-kind"].([]any)
			for _, g := range gvks {
				gvk := g.(schema)
				group, version, kind := gvk["group"].(string), gvk["version"].(string), gvk["kind"].(string)
				root := deepCopy(d).(schema)
				write(*out, group, version, kind, withDefinitions(root, defs))
				count++
			}
		}
		if *builtins {
			fmt.Printf("schemagen: %d built-in schemas from %s\n", count, *swagger)
		}
	}
	for _, file := range flag.Args() {
		raw, err := os.ReadFile(file)
		check(err)
		for _, doc := range splitYAML(raw) {
			js, err := yaml.YAMLToJSON(doc)
			check(err)
			var crd schema
			check(json.Unmarshal(js, &crd))
			if crd == nil || crd["kind"] != "CustomResourceDefinition" {
				continue
			}
			spec := crd["spec"].(schema)
			group := spec["group"].(string)
			kind := spec["names"].(schema)["kind"].(string)
			for _, v := range spec["versions"].([]any) {
				version := v.(schema)
				name := version["name"].(string)
				s, ok := version["schema"].(schema)
				if !ok {
					fail(fmt.Sprintf("%s: %s/%s has no schema", file, group, name))
				}
				root := crdNode(deepCopy(s["openAPIV3Schema"])).(schema)
				props, _ := root["properties"].(schema)
				if props == nil {
					props = schema{}
					root["properties"] = props
				}
				props["apiVersion"] = schema{"type": "string", "enum": []any{group + "/" + name}}
				props["kind"] = schema{"type": "string", "enum": []any{kind}}
				if _, ok := defs[objectMeta]; ok {
					props["metadata"] = schema{"$ref": refPrefix + objectMeta}
				} else {
					props["metadata"] = schema{"type": "object"}
				}
				root["additionalProperties"] = false
				root["required"] = appendUnique(root["required"], "apiVersion", "kind")
				write(*out, group, name, kind, withDefinitions(root, defs))
				fmt.Printf("schemagen: %s/%s %s from %s\n", group, name, kind, filepath.Base(file))
			}
		}
	}
}

// fixBuiltin rewrites one OpenAPI v2 definition into a strict JSON schema.
func fixBuiltin(name string, d schema) schema {
	switch name {
	case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
		return described(schema{"type": []any{"string", "integer"}}, d)
	case "io.k8s.apimachinery.pkg.api.resource.Quantity":
		return described(schema{"type": []any{"string", "number"}}, d)
	}
	return builtinNode(d).(schema)
}

func builtinNode(n any) any {
	switch v := n.(type) {
	case schema:
		if v["format"] == "int-or-string" {
			return described(schema{"type": []any{"string", "integer"}}, v)
		}
		for k, c := range v {
			if k == "properties" {
				props := c.(schema)
				for p, ps := range props {
					props[p] = builtinNode(ps)
				}
			} else {
				v[k] = builtinNode(c)
			}
		}
		strictObject(v)
		nullableOptional(v)
		return v
	case []any:
		for i, c := range v {
			v[i] = builtinNode(c)
		}
	}
	return n
}

// crdNode rewrites one node of a CRD's openAPIV3Schema (structural schema) into a JSON schema.
func crdNode(n any) any {
	switch v := n.(type) {
	case schema:
		if v["x-kubernetes-int-or-string"] == true {
			delete(v, "anyOf")
			v["type"] = []any{"string", "integer"}
		}
		for k, c := range v {
			if k == "properties" {
				props := c.(schema)
				for p, ps := range props {
					props[p] = crdNode(ps)
				}
			} else if k != "default" && k != "example" && k != "enum" {
				v[k] = crdNode(c)
			}
		}
		if v["nullable"] == true {
			allowNull(v)
		}
		delete(v, "nullable")
		// In a CRD, optional means absent; only `nullable: true` admits null (the apiserver prunes
		// or rejects other nulls), so no null for optional fields here.
		strictObject(v)
		return v
	case []any:
		for i, c := range v {
			v[i] = crdNode(c)
		}
	}
	return n
}

// strictObject rejects unknown fields of objects with declared properties (what kubectl's and the
// API server's strict field validation do), unless the schema preserves unknown fields.
func strictObject(v schema) {
	if _, ok := v["properties"].(schema); !ok {
		return
	}
	if _, has := v["additionalProperties"]; !has && v["x-kubernetes-preserve-unknown-fields"] != true {
		v["additionalProperties"] = false
	}
}

// nullableOptional lets every optional property of built-in kinds be null: the API server treats
// `field: null` as absent, and Helm templates often render it.
func nullableOptional(v schema) {
	props, ok := v["properties"].(schema)
	if !ok {
		return
	}
	required := map[string]bool{}
	if r, ok := v["required"].([]any); ok {
		for _, x := range r {
			required[x.(string)] = true
		}
	}
	for p, ps := range props {
		if required[p] {
			continue
		}
		if s, ok := ps.(schema); ok {
			if ref, ok := s["$ref"]; ok {
				props[p] = described(schema{"anyOf": []any{schema{"type": "null"}, schema{"$ref": ref}}}, s)
				continue
			}
			allowNull(s)
		}
	}
}

// described copies from's description, if any, into s.
func described(s, from schema) schema {
	if d, ok := from["description"]; ok {
		s["description"] = d
	}
	return s
}

func allowNull(s schema) {
	switch t := s["type"].(type) {
	case string:
		s["type"] = []any{t, "null"}
	case []any:
		s["type"] = appendUnique(t, "null")
	default:
		if _, ok := s["$ref"]; ok {
			ref := s["$ref"]
			delete(s, "$ref")
			s["anyOf"] = []any{schema{"type": "null"}, schema{"$ref": ref}}
		}
	}
	if e, ok := s["enum"].([]any); ok {
		s["enum"] = append(e, nil)
	}
}

// withDefinitions copies every definition root references (transitively) into root["definitions"].
func withDefinitions(root schema, defs map[string]any) schema {
	used := map[string]any{}
	var walk func(n any)
	walk = func(n any) {
		switch v := n.(type) {
		case schema:
			if ref, ok := v["$ref"].(string); ok && strings.HasPrefix(ref, refPrefix) {
				name := strings.TrimPrefix(ref, refPrefix)
				if _, seen := used[name]; !seen {
					d, ok := defs[name]
					if !ok {
						fail("unknown definition " + name)
					}
					used[name] = d
					walk(d)
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(root)
	if len(used) > 0 {
		root["definitions"] = used
	}
	return root
}

func write(out, group, version, kind string, s schema) {
	dir := group
	if dir == "" {
		dir = version
	}
	path := filepath.Join(out, dir, strings.ToLower(kind)+"-"+version+".json")
	check(os.MkdirAll(filepath.Dir(path), 0o755))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	check(enc.Encode(s))
	// Compile it as kubeconform will (draft 4): kubeconform treats a schema that does not compile
	// as missing, which would hide the real error.
	var doc any
	check(json.Unmarshal(buf.Bytes(), &doc))
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	check(c.AddResource(path, doc))
	if _, err := c.Compile(path); err != nil {
		fail(fmt.Sprintf("%s does not compile: %v", path, err))
	}
	check(os.WriteFile(path, buf.Bytes(), 0o644))
}

func splitYAML(raw []byte) [][]byte {
	var docs [][]byte
	var cur []string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.TrimRight(line, " \r") == "---" {
			docs = append(docs, []byte(strings.Join(cur, "\n")))
			cur = nil
			continue
		}
		cur = append(cur, line)
	}
	return append(docs, []byte(strings.Join(cur, "\n")))
}

func deepCopy(n any) any {
	switch v := n.(type) {
	case schema:
		c := schema{}
		for k, x := range v {
			c[k] = deepCopy(x)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, x := range v {
			c[i] = deepCopy(x)
		}
		return c
	}
	return n
}

func appendUnique(list any, values ...string) []any {
	out, _ := list.([]any)
	for _, v := range values {
		found := false
		for _, x := range out {
			if x == v {
				found = true
			}
		}
		if !found {
			out = append(out, v)
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func check(err error) {
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "schemagen:", msg)
	os.Exit(1)
}
EOF
schemagen_hash=$(cat "$WORK"/schemagen/{go.mod,go.sum,main.go} | sha256sum | cut -c1-16)
SCHEMAGEN="$TOOLS/schemagen-$schemagen_hash/schemagen"
if [[ ! -x $SCHEMAGEN ]]; then
    echo "building schemagen ($schemagen_hash)"
    (cd "$WORK/schemagen" && CGO_ENABLED=0 "$GO" build -trimpath -o "$SCHEMAGEN.tmp" .)
    mv "$SCHEMAGEN.tmp" "$SCHEMAGEN"
fi

k8s_dir=$(module_dir "k8s.io/kubernetes@$KUBERNETES_VERSION")
swagger="$k8s_dir/api/openapi-spec/swagger.json"
[[ -f $swagger ]] || die "no $swagger"
SCHEMAS="$TOOLS/schemas/k8s-$KUBERNETES_VERSION-promop-$PROMETHEUS_OPERATOR_VERSION-argocd-$ARGOCD_VERSION-$schemagen_hash"
if [[ ! -f $SCHEMAS/.complete ]]; then
    promop_dir=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
    argocd_dir=$(module_dir "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION")
    rm -rf "$SCHEMAS"
    "$SCHEMAGEN" -out "$SCHEMAS" -swagger "$swagger" \
        "$promop_dir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
        "$promop_dir/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" \
        "$argocd_dir/manifests/crds/application-crd.yaml"
    touch "$SCHEMAS/.complete"
else
    echo "cached: $SCHEMAS"
fi
flock -u 9
# Our CRDs, fresh every run.
"$SCHEMAGEN" -out "$WORK/schemas" -swagger "$swagger" -builtins=false "$CHART"/templates/crds/*.yaml

# kubeconform's template variables: .Group is the API group, or the version for the core group.
layout='{{ .Group }}/{{ .ResourceKind }}-{{ .ResourceAPIVersion }}.json'
conform() {
    "$KUBECONFORM" -strict -summary \
        -schema-location "$WORK/schemas/$layout" \
        -schema-location "$SCHEMAS/$layout" "$@"
}

# The values sets: defaults, then every ci/*-values.yaml.
value_sets=("")
for f in "$CHART"/ci/*-values.yaml; do value_sets+=("$f"); done
values_args() { [[ -z $1 ]] || printf -- '-f\n%s\n' "$1"; }

step "helm lint"
for set in "${value_sets[@]}"; do
    echo "-- values: ${set:-defaults}"
    mapfile -t args < <(values_args "$set")
    "$HELM" lint --strict --quiet --kube-version "$KUBERNETES_VERSION" "$CHART" "${args[@]}"
done

step "helm template | kubeconform"
for set in "${value_sets[@]}"; do
    mapfile -t args < <(values_args "$set")
    out="$WORK/rendered-$(basename "${set:-defaults}").yaml"
    "$HELM" template "$RELEASE" "$CHART" -n "$NAMESPACE" --kube-version "$KUBERNETES_VERSION" "${args[@]}" > "$out"
    echo "-- values: ${set:-defaults}"
    conform "$out"
done

step "guard rails"
rendered=("$WORK"/rendered-*.yaml)
# The operator owns <release>-gateway-config; a chart copy would fight it.
if grep -q "^  name: $RELEASE-gateway-config$" "${rendered[@]}"; then
    die "the chart renders $RELEASE-gateway-config, which the operator owns"
fi
# The admin API has its own Service everywhere; a NetworkPolicy opens its port only where values list
# peers (never on the defaults).
grep -q "^  name: $RELEASE-gateway-admin$" "$WORK/rendered-defaults.yaml" || die "no $RELEASE-gateway-admin Service"
if grep -A30 "^kind: NetworkPolicy" "$WORK/rendered-defaults.yaml" | grep -q "port: admin"; then
    die "the default values open the admin port"
fi
grep -A30 "^kind: NetworkPolicy" "$WORK"/rendered-*postgres-monitoring*.yaml | grep -q "port: admin" \
    || die "gateway.admin.networkPolicy.from did not open the admin port"
# Traces: both workloads export where monitoring.tracing says, and nothing is set without an endpoint.
[[ $(grep -c "name: SWITCHBOARD_OTLP_ENDPOINT" "$WORK"/rendered-*postgres-monitoring*.yaml) == 2 ]] \
    || die "monitoring.tracing.endpoint did not reach both the gateway and the operator"
if grep -q "OTLP\|OTEL_" "$WORK/rendered-defaults.yaml"; then die "the default values configure trace export"; fi
# Least privilege: no wildcard anywhere in the rendered Roles and ClusterRoles (comments stripped).
for set in "${value_sets[@]}"; do
    mapfile -t args < <(values_args "$set")
    if "$HELM" template "$RELEASE" "$CHART" -n "$NAMESPACE" --kube-version "$KUBERNETES_VERSION" "${args[@]}" \
            --show-only templates/operator/rbac.yaml --show-only templates/gateway/rbac.yaml \
            | sed 's/#.*//' | grep -n '\*'; then
        die "wildcard in RBAC rules (values: ${set:-defaults})"
    fi
done
echo "ok: no wildcards in RBAC"
# Values that must be refused, and why.
refuse() {
    local why=$1 pattern=$2
    shift 2
    local err
    if err=$("$HELM" template "$RELEASE" "$CHART" -n "$NAMESPACE" --kube-version "$KUBERNETES_VERSION" "$@" 2>&1 >/dev/null); then
        die "accepted: $* ($why)"
    fi
    grep -q -- "$pattern" <<<"$err" || die "refused for the wrong reason: $* ($why): $err"
    echo "refused: $why"
}
refuse "postgres without its Secret" "existingSecret" --set gateway.database.type=postgres
refuse "unknown database" "sqlite" --set gateway.database.type=mysql
refuse "misspelt key" "replica" --set gateway.replica=3
refuse "unknown trace compression" "compression" --set monitoring.tracing.compression=lz4
refuse "sampling ratio over 1" "samplingRatio" --set monitoring.tracing.samplingRatio=2
refuse "grace period shorter than the drain" "terminationGracePeriodSeconds" --set gateway.terminationGracePeriodSeconds=30
refuse "sign-in without its client secret" "clientSecret" --set gateway.signIn.issuer=https://login.example.com
# Sign-in: its flags and secret reach the gateway, and only then may it ask the API server about people.
signin=$("$HELM" template "$RELEASE" "$CHART" -n "$NAMESPACE" --kube-version "$KUBERNETES_VERSION" \
    --set gateway.signIn.issuer=https://login.example.com --set gateway.signIn.clientId=switchboard \
    --set gateway.signIn.clientSecret.existingSecret=oidc)
grep -q -- '--oidc-issuer=https://login.example.com' <<<"$signin" && grep -q 'SWITCHBOARD_OIDC_CLIENT_SECRET' <<<"$signin" \
    || die "gateway.signIn did not reach the gateway"
grep -q 'resources: \[subjectaccessreviews\]' <<<"$signin" || die "sign-in without the SubjectAccessReview permission"
if grep -q 'subjectaccessreviews' "$WORK/rendered-defaults.yaml"; then die "the default values grant SubjectAccessReviews"; fi
# With a roles file: the file reaches the gateway, a change rolls it, and no SubjectAccessReviews.
roles=$("$HELM" template "$RELEASE" "$CHART" -n "$NAMESPACE" --kube-version "$KUBERNETES_VERSION" \
    --set gateway.signIn.issuer=https://login.example.com --set gateway.signIn.clientId=switchboard \
    --set gateway.signIn.clientSecret.existingSecret=oidc \
    --set 'gateway.signIn.roles.platformAdmins.groups={platform-team}' \
    --set 'gateway.signIn.roles.tenantAdmins.payments.users={ada@example.com}')
grep -q -- '--roles-file=/etc/switchboard/roles/roles.yaml' <<<"$roles" && grep -q 'checksum/roles:' <<<"$roles" \
    && grep -q -- '- platform-team' <<<"$roles" || die "gateway.signIn.roles did not reach the gateway"
if grep -q 'subjectaccessreviews' <<<"$roles"; then die "a roles file still grants SubjectAccessReviews"; fi
refuse "a misspelt role" "platformAdmin" --set gateway.signIn.issuer=https://login.example.com \
    --set gateway.signIn.clientSecret.existingSecret=oidc --set 'gateway.signIn.roles.platformAdmin.groups={x}'
echo "ok: sign-in settings and their RBAC"
# SQLite always runs one gateway replica.
if ! "$HELM" template "$RELEASE" "$CHART" -n "$NAMESPACE" --kube-version "$KUBERNETES_VERSION" \
        --set gateway.replicas=4 --show-only templates/gateway/deployment.yaml | grep -q '^  replicas: 1$'; then
    die "gateway.database.type=sqlite must force one replica"
fi
echo "ok: sqlite forces replicas: 1"

step "kustomize build | kubeconform"
for dir in config/kustomize/base config/kustomize/overlays/*/; do
    dir=${dir%/}
    echo "-- $dir"
    "$KUSTOMIZE" build --enable-helm --helm-command "$HELM" "$dir" > "$WORK/kustomize.yaml"
    conform "$WORK/kustomize.yaml"
done

step "config/argocd and config/samples | kubeconform"
conform config/argocd/*.yaml config/samples/*.yaml

step "chart-lint: ok"
