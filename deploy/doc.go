// Package deploy holds latch's deployment files, kubernetes/ (a sidecar
// Deployment with a kustomize base and an etcd overlay), systemd/ and
// compose/, and in its tests the checks that they work as shipped: strict
// decoding into the real API types, a simulated pod running the real latch,
// kustomize, systemd-analyze, compose-go and promtool. See README.md.
package deploy
