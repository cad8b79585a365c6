package main

import (
	"strings"
	"testing"
)

func TestClusterRoleTemplateRefusesWildcards(t *testing.T) {
	base := "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: manager-role\nrules:\n"
	ok := base + "- apiGroups: [meshplane.io]\n  resources: [meshinstalls]\n  verbs: [get, list, watch]\n"
	out, err := ClusterRoleTemplate([]byte(ok))
	if err != nil {
		t.Fatalf("exact rule refused: %v", err)
	}
	if !strings.Contains(string(out), "- meshinstalls") || !strings.Contains(string(out), `{{ include "meshplane.fullname" . }}-manager`) {
		t.Errorf("unexpected template:\n%s", out)
	}
	for _, bad := range []string{
		"- apiGroups: ['*']\n  resources: [pods]\n  verbs: [get]\n",
		"- apiGroups: ['']\n  resources: ['*']\n  verbs: [get]\n",
		"- apiGroups: ['']\n  resources: [pods]\n  verbs: ['*']\n",
		"- apiGroups: ['']\n  resources: ['pods/*']\n  verbs: [get]\n",
		"- apiGroups: ['']\n  resources: [serviceaccounts]\n  verbs: [impersonate]\n",
		"- apiGroups: ['']\n  resources: [pods]\n  verbs: [bind]\n",
	} {
		if _, err := ClusterRoleTemplate([]byte(base + bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if _, err := ClusterRoleTemplate([]byte(base + "- apiGroups: ['']\n  resources: [pods]\n  verbs: [get]\n  unknown: 1\n")); err == nil {
		t.Errorf("accepted an unknown field")
	}
}
