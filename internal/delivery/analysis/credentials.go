package analysis

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Keys of the Secret a MetricsServer's secretRef names.
const (
	SecretKeyUsername = "username"
	SecretKeyPassword = "password"
	SecretKeyToken    = "token"
)

// CredentialsFromSecret reads the metrics API credentials from s: token
// (bearer), or username and password (basic auth). A Secret with neither,
// or a username without a password, is an error saying which keys it
// needs.
func CredentialsFromSecret(s *corev1.Secret) (*Credentials, error) {
	if s == nil {
		return nil, fmt.Errorf("no Secret")
	}
	get := func(k string) string { return strings.TrimSpace(string(s.Data[k])) }
	if tok := get(SecretKeyToken); tok != "" {
		return &Credentials{Token: tok}, nil
	}
	user, pass := get(SecretKeyUsername), string(s.Data[SecretKeyPassword])
	switch {
	case user != "" && pass != "":
		return &Credentials{Username: user, Password: pass}, nil
	case user != "":
		return nil, fmt.Errorf("Secret %s/%s has key %s but no %s", s.Namespace, s.Name, SecretKeyUsername, SecretKeyPassword) //nolint:staticcheck // ST1005: "Secret" is the Kubernetes kind
	}
	return nil, fmt.Errorf("Secret %s/%s has neither key %s nor keys %s and %s", s.Namespace, s.Name, SecretKeyToken, SecretKeyUsername, SecretKeyPassword) //nolint:staticcheck // ST1005: "Secret" is the Kubernetes kind
}
