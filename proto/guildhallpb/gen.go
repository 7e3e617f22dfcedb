// Package guildhallpb holds the Go code generated from proto/*.proto: the
// gateway frames, bus messages and resource types on the wire. Nothing else
// lives here; convert to domain types at the edge.
package guildhallpb

//go:generate sh ../generate.sh
