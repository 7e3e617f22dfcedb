// Package api is the REST edge of Guildhall (docs/api.md): JSON over HTTP
// under /api/v1. It authenticates bearer tokens, decodes and bounds every
// input, and calls the member service and message reader in-process (they
// work on the shared store) and the message service over the bus (it owns
// ordering and fan-out). Errors leave as {code, message} through Error,
// the one place that maps error kinds to HTTP statuses.
package api
