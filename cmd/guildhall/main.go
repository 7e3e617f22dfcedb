// Command guildhall runs Guildhall: by default every role in one process
// with an embedded NATS server and an embedded store under --data-dir;
// --roles picks a subset. With --store=cql the processes share a CQL
// keyspace (ScyllaDB or Cassandra), Redis and NATS, so every role can run
// many times; "guildhall migrate" creates and migrates the keyspace.
// Flags can also be set as GUILDHALL_* environment variables (flag
// --data-dir is GUILDHALL_DATA_DIR); a flag given on the command line wins.
//
//	guildhall [flags]          run the roles until SIGINT or SIGTERM
//	guildhall migrate [flags]  apply the CQL migrations and exit
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "guildhall:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "guildhall:", err)
		_ = m.Close(context.Background())
		os.Exit(1)
	}
	if m.Config.Command == CommandMigrate {
		if err := m.Close(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "guildhall:", err)
			os.Exit(1)
		}
		return
	}
	if m.Config.Store == StoreCQL {
		m.Log.Info("guildhall is running", "addr", m.Addr(), "roles", m.Config.Roles, "store", "cql", "keyspace", m.Config.CQL.Keyspace, "nats", m.natsWhere())
	} else {
		m.Log.Info("guildhall is running", "addr", m.Addr(), "roles", m.Config.Roles, "data_dir", m.Config.DataDir, "nats", m.natsWhere())
	}
	<-ctx.Done()
	stop()
	m.Log.Info("shutting down: telling clients to reconnect, flushing")
	cctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
	defer cancel()
	if err := m.Close(cctx); err != nil {
		fmt.Fprintln(os.Stderr, "guildhall: shutdown:", err)
		os.Exit(1)
	}
}
