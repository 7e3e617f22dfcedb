package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/guildhall/guildhall/snowflake"
)

// Roles a process can run.
const (
	RoleAPI       = "api"       // REST under /api/v1 (member service, history reads)
	RoleLink      = "link"      // WebSocket gateway at /gateway
	RoleSubscribe = "subscribe" // subscription service
	RoleMessage   = "message"   // message service: send/edit/delete, fan-out
)

var allRoles = []string{RoleAPI, RoleLink, RoleSubscribe, RoleMessage}

// Config is the whole configuration of a guildhall process.
type Config struct {
	Addr              string
	DataDir           string
	Roles             []string
	NATSURL           string // empty: run an embedded NATS server
	NATSListen        string // embedded server's client listener, empty: in-process only
	NodeID            int    // snowflake node number, -1: random
	LinkID            string // link node ID on the bus, empty: random
	HeartbeatInterval time.Duration
	AuditRetention    time.Duration
	AllowedOrigins    []string
	Compression       bool
	SmallServer       int
	ShutdownTimeout   time.Duration
	LogLevel          string
	LogFormat         string
}

func (c Config) has(role string) bool { return slices.Contains(c.Roles, role) }

// ParseFlags fills m.Config from args and, for flags not on the command
// line, from GUILDHALL_* variables read with getenv. It validates the
// result and says exactly what is wrong.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("guildhall", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var roles string
	c := &m.Config
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "HTTP listen address (REST, gateway, health)")
	fs.StringVar(&c.DataDir, "data-dir", "guildhall-data", "directory for the embedded store and NATS JetStream state")
	fs.StringVar(&roles, "roles", "all", "comma-separated roles to run: all or any of "+strings.Join(allRoles, ","))
	fs.StringVar(&c.NATSURL, "nats-url", "", "URL of an external NATS server; empty runs one embedded")
	fs.StringVar(&c.NATSListen, "nats-listen", "", "host:port for the embedded NATS server's clients; empty for in-process only")
	fs.IntVar(&c.NodeID, "node-id", -1, fmt.Sprintf("snowflake node number 0..%d, unique per process; -1 picks one at random", snowflake.MaxNode))
	fs.StringVar(&c.LinkID, "link-id", "", "this link node's ID on the bus; empty picks one at random")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", 30*time.Second, "gateway heartbeat interval told to clients")
	fs.DurationVar(&c.AuditRetention, "audit-retention", 90*24*time.Hour, "how long audit log entries are kept; negative keeps them forever")
	fs.BoolVar(&c.Compression, "gateway-compression", false, "offer permessage-deflate on the gateway (costs CPU, saves bandwidth)")
	fs.IntVar(&c.SmallServer, "small-server", 2000, "sessions follow every visible channel of servers with fewer members than this without subscribing; 0 or negative turns it off")
	var origins string
	fs.StringVar(&origins, "allowed-origins", "", "comma-separated extra browser origins (host patterns, e.g. app.example.com) allowed to open the gateway")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long a graceful shutdown may take")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	usage := func() string {
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		return b.String()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return fmt.Errorf("usage of guildhall:\n%s", usage())
		}
		return fmt.Errorf("%v\nusage of guildhall:\n%s", err, usage())
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (all settings are flags)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "GUILDHALL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" && !set[f.Name] && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", env, v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	return c.validate(roles)
}

func (c *Config) validate(roles string) error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("--addr %q: want host:port (%v)", c.Addr, err)
	}
	if c.NATSListen != "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			return fmt.Errorf("--nats-listen %q: want host:port (%v)", c.NATSListen, err)
		}
	}
	if c.DataDir == "" {
		return fmt.Errorf("--data-dir must not be empty")
	}
	c.Roles = nil
	for _, r := range strings.Split(roles, ",") {
		r = strings.TrimSpace(r)
		switch {
		case r == "all":
			c.Roles = append(c.Roles, allRoles...)
		case slices.Contains(allRoles, r):
			c.Roles = append(c.Roles, r)
		default:
			return fmt.Errorf("--roles: unknown role %q (want all or any of %s)", r, strings.Join(allRoles, ","))
		}
	}
	slices.Sort(c.Roles)
	c.Roles = slices.Compact(c.Roles)
	if c.NodeID < -1 || c.NodeID > snowflake.MaxNode {
		return fmt.Errorf("--node-id %d: want -1 (random) or 0..%d", c.NodeID, snowflake.MaxNode)
	}
	if c.HeartbeatInterval < time.Second || c.HeartbeatInterval > 5*time.Minute {
		return fmt.Errorf("--heartbeat-interval %v: want 1s to 5m", c.HeartbeatInterval)
	}
	if c.AuditRetention == 0 {
		return fmt.Errorf("--audit-retention must not be 0 (negative keeps entries forever)")
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("--shutdown-timeout must be positive")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	return nil
}
