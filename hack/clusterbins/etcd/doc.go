// Package etcd is a wrapper module that pins etcd's server module so the
// Makefile can build the etcd binary from the Go module proxy.
package etcd
