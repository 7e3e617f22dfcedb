package bus

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures the NATS server a single process runs.
type EmbeddedConfig struct {
	// StoreDir is where JetStream keeps its state; empty for memory only.
	StoreDir string
	// Host and Port for clients; Port -1 picks a random port, 0 means no
	// listener at all (in-process connections only).
	Host string
	Port int
}

// StartEmbedded starts a real NATS server in this process, with JetStream,
// and waits until it accepts connections. Stop it with Shutdown and
// WaitForShutdown.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "guildhall-embedded",
		Host:       cfg.Host,
		Port:       cfg.Port,
		DontListen: cfg.Port == 0,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if cfg.StoreDir == "" {
		opts.JetStreamMaxStore = 1 << 30
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 10s")
	}
	return ns, nil
}
