#!/usr/bin/env bash
# Strictly checks the Kubernetes manifests in this directory without a
# cluster or kubectl: every document is decoded into the k8s.io/api Go
# types with unknown fields refused, so a misspelt or misplaced field, or
# a wrong type, fails. (Semantics a cluster would check, such as admission
# policies, are not.) Needs Go and the Go module proxy; the throwaway
# module lives outside the repository.
#
#   deploy/k8s/validate.sh [manifest.yaml ...]   # default: deploy/k8s/*.yaml
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
K8S_API_VERSION=v0.37.2
K8S_YAML_VERSION=v1.6.0
dir="${GUILDHALL_TESTDEPS_DIR:-/tmp/guildhall-testdeps}/cache/k8scheck"
mkdir -p "$dir"
if [ $# -eq 0 ]; then set -- "$here"/*.yaml; fi

cat >"$dir/go.mod" <<MOD
module k8scheck

go 1.26

require (
	k8s.io/api $K8S_API_VERSION
	sigs.k8s.io/yaml $K8S_YAML_VERSION
)
MOD
cat >"$dir/main.go" <<'GO'
// Strictly decodes Kubernetes manifests into the k8s.io/api types: an
// unknown or misspelt field, or a wrong type, is an error.
package main

import (
	"bytes"
	"fmt"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	bad := 0
	for _, path := range os.Args[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			var meta struct{ Kind string }
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				fmt.Printf("%s doc %d: %v\n", path, i, err)
				bad++
				continue
			}
			var obj any
			switch meta.Kind {
			case "Namespace":
				obj = &corev1.Namespace{}
			case "Service":
				obj = &corev1.Service{}
			case "ConfigMap":
				obj = &corev1.ConfigMap{}
			case "StatefulSet":
				obj = &appsv1.StatefulSet{}
			case "Deployment":
				obj = &appsv1.Deployment{}
			case "Job":
				obj = &batchv1.Job{}
			case "Ingress":
				obj = &networkingv1.Ingress{}
			case "PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			case "Kustomization", "":
				continue
			default:
				fmt.Printf("%s doc %d: kind %s not checked\n", path, i, meta.Kind)
				bad++
				continue
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				fmt.Printf("%s doc %d (%s): %v\n", path, i, meta.Kind, err)
				bad++
				continue
			}
			fmt.Printf("ok %s %s\n", path, meta.Kind)
		}
	}
	if bad > 0 {
		os.Exit(1)
	}
}
GO
cd "$dir"
export GOWORK=off GOFLAGS=-mod=mod
[ -f go.sum ] || go mod tidy >&2
go run . "$@"
