// Package kwok is a wrapper module that pins sigs.k8s.io/kwok so the Makefile
// can build kwok and kwokctl from the Go module proxy.
package kwok
