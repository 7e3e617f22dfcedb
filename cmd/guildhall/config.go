package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gocql/gocql"

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

// Stores a process can run on (--store).
const (
	StoreEmbedded = "embedded" // Pebble under --data-dir, in-process cache: one process
	StoreCQL      = "cql"      // ScyllaDB/Cassandra and Redis, shared by many processes
)

// Commands: the first argument, when it is not a flag.
const (
	CommandServe   = ""        // run the roles (no command given)
	CommandMigrate = "migrate" // apply the CQL migrations, then exit
)

// Config is the whole configuration of a guildhall process.
type Config struct {
	Addr              string
	MetricsAddr       string // empty: /metrics on Addr
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

	// JetStreamReplicas of the streams and buckets guildhall creates
	// (session checkpoints, the message log): 1, or 3 on a NATS cluster.
	JetStreamReplicas int

	Command string // CommandServe or CommandMigrate
	Store   string // StoreEmbedded or StoreCQL
	Migrate bool   // apply CQL migrations at start-up
	CQL     CQLConfig
	Redis   RedisConfig
}

// CQLConfig is where the CQL store is (--store=cql).
type CQLConfig struct {
	Hosts       []string
	Keyspace    string
	Consistency gocql.Consistency
	// Replication of a keyspace that migrations create: a replication
	// factor (SimpleStrategy) or data center → replicas
	// (NetworkTopologyStrategy).
	ReplicationFactor int
	DataCenters       map[string]int
	Timeout           time.Duration
	Username          string
	Password          string
}

// RedisConfig is where Redis is (--store=cql).
type RedisConfig struct {
	Addr     string
	Password string
	DB       int
	Prefix   string // starts every key guildhall writes
}

func (c Config) has(role string) bool { return slices.Contains(c.Roles, role) }

// ParseFlags fills m.Config from args and, for flags not on the command
// line, from GUILDHALL_* variables read with getenv. It validates the
// result and says exactly what is wrong.
//
// A first argument "migrate" selects the migrate command (apply the CQL
// migrations and exit); it takes the same flags.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("guildhall", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var roles string
	c := &m.Config
	if len(args) > 0 && args[0] == CommandMigrate {
		c.Command, args = CommandMigrate, args[1:]
	}
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "HTTP listen address (REST, gateway, health)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "host:port serving /metrics, /healthz and /readyz apart from --addr (keeps metrics off the public address); empty serves /metrics on --addr")
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
	fs.IntVar(&c.JetStreamReplicas, "jetstream-replicas", 1, "replicas of the JetStream streams and buckets guildhall creates: 1, or 3 (up to 5) on a NATS cluster (--nats-url)")
	fs.StringVar(&c.Store, "store", StoreEmbedded, "embedded (Pebble under --data-dir, one process) or cql (ScyllaDB/Cassandra and Redis, many processes)")
	fs.BoolVar(&c.Migrate, "migrate", false, "with --store=cql: apply the CQL migrations (creating the keyspace) at start-up")
	var cqlHosts, consistency, replication string
	fs.StringVar(&cqlHosts, "cql-hosts", "", "with --store=cql: comma-separated host[:port] of CQL nodes (port defaults to 9042)")
	fs.StringVar(&c.CQL.Keyspace, "cql-keyspace", "guildhall", "with --store=cql: the keyspace")
	fs.StringVar(&consistency, "cql-consistency", "local_quorum", "with --store=cql: consistency of reads and writes (one, local_one, quorum, local_quorum, each_quorum, all)")
	fs.StringVar(&replication, "cql-replication", "1", "with --store=cql: replication of a keyspace that migrations create: a factor (SimpleStrategy) or dc=n,dc2=n (NetworkTopologyStrategy)")
	fs.DurationVar(&c.CQL.Timeout, "cql-timeout", 10*time.Second, "with --store=cql: connect and per-query timeout")
	fs.StringVar(&c.CQL.Username, "cql-username", "", "with --store=cql: user name for password authentication; empty for none")
	fs.StringVar(&c.CQL.Password, "cql-password", "", "with --store=cql: password (prefer GUILDHALL_CQL_PASSWORD)")
	fs.StringVar(&c.Redis.Addr, "redis-addr", "", "with --store=cql: Redis host:port (message cache, unread counters)")
	fs.StringVar(&c.Redis.Password, "redis-password", "", "with --store=cql: Redis password (prefer GUILDHALL_REDIS_PASSWORD)")
	fs.IntVar(&c.Redis.DB, "redis-db", 0, "with --store=cql: Redis database number")
	fs.StringVar(&c.Redis.Prefix, "redis-prefix", "gh:", "with --store=cql: prefix of every Redis key guildhall writes (deployments sharing a Redis need different ones)")
	usage := func() string {
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		return b.String()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return fmt.Errorf("usage: guildhall [flags]          run the roles\n       guildhall migrate [flags]  apply the CQL migrations (--store=cql) and exit\nflags (each also as GUILDHALL_<NAME>, e.g. GUILDHALL_DATA_DIR):\n%s", usage())
		}
		return fmt.Errorf("%v\nusage of guildhall:\n%s", err, usage())
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (all settings are flags)", fs.Arg(0))
	}
	set := map[string]bool{} // given on the command line or in the environment
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "GUILDHALL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" && !set[f.Name] && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", env, v, err)
			}
			set[f.Name] = true
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := c.parseStore(set, cqlHosts, consistency, replication); err != nil {
		return err
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	return c.validate(roles)
}

// parseStore validates the store flags: --store=cql needs --cql-hosts and,
// to serve, --redis-addr and a NATS the other processes share (--nats-url,
// or --nats-listen to expose the embedded one); the cql and redis flags
// belong to --store=cql only.
func (c *Config) parseStore(set map[string]bool, hosts, consistency, replication string) error {
	if c.Command == CommandMigrate && !set["store"] {
		c.Store = StoreCQL // the only store with migrations
	}
	switch c.Store {
	case StoreEmbedded:
		if c.Command == CommandMigrate {
			return fmt.Errorf("migrate applies CQL migrations: it needs --store=cql (the embedded store has none)")
		}
		for _, name := range []string{"migrate", "cql-hosts", "cql-keyspace", "cql-consistency", "cql-replication", "cql-timeout", "cql-username", "cql-password", "redis-addr", "redis-password", "redis-db", "redis-prefix"} {
			if set[name] {
				return fmt.Errorf("--%s is for --store=cql (the store is embedded)", name)
			}
		}
		return nil
	case StoreCQL:
	default:
		return fmt.Errorf("--store %q: want embedded or cql", c.Store)
	}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if strings.Contains(h, ":") {
			if _, port, err := net.SplitHostPort(h); err != nil || port == "" {
				return fmt.Errorf("--cql-hosts: %q: want host or host:port", h)
			}
		}
		c.CQL.Hosts = append(c.CQL.Hosts, h)
	}
	if len(c.CQL.Hosts) == 0 {
		return fmt.Errorf("--store=cql needs --cql-hosts (comma-separated host[:port] of CQL nodes)")
	}
	if !keyspaceName.MatchString(c.CQL.Keyspace) {
		return fmt.Errorf("--cql-keyspace %q: want a lower-case letter, then up to 47 lower-case letters, digits or _", c.CQL.Keyspace)
	}
	cons, err := gocql.ParseConsistencyWrapper(strings.ToUpper(consistency))
	if err != nil || cons == gocql.Any || cons == gocql.Serial || cons == gocql.LocalSerial {
		return fmt.Errorf("--cql-consistency %q: want one, two, three, local_one, quorum, local_quorum, each_quorum or all", consistency)
	}
	c.CQL.Consistency = cons
	if c.CQL.ReplicationFactor, c.CQL.DataCenters, err = parseReplication(replication); err != nil {
		return fmt.Errorf("--cql-replication %q: %v", replication, err)
	}
	if c.CQL.Timeout <= 0 {
		return fmt.Errorf("--cql-timeout must be positive")
	}
	if c.CQL.Password != "" && c.CQL.Username == "" {
		return fmt.Errorf("--cql-password needs --cql-username")
	}
	if c.Command == CommandMigrate {
		return nil
	}
	if c.Redis.Addr == "" {
		return fmt.Errorf("--store=cql needs --redis-addr (host:port of the Redis the processes share)")
	}
	if _, _, err := net.SplitHostPort(c.Redis.Addr); err != nil {
		return fmt.Errorf("--redis-addr %q: want host:port (%v)", c.Redis.Addr, err)
	}
	if c.Redis.Prefix == "" {
		return fmt.Errorf("--redis-prefix must not be empty")
	}
	if c.Redis.DB < 0 {
		return fmt.Errorf("--redis-db %d: want 0 or more", c.Redis.DB)
	}
	if c.NATSURL == "" && c.NATSListen == "" {
		return fmt.Errorf("--store=cql runs next to other processes, which must share its NATS: give --nats-url (an external NATS) or --nats-listen (expose this process's embedded NATS)")
	}
	return nil
}

var keyspaceName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

// parseReplication reads "3" (SimpleStrategy) or "dc1=3,dc2=2"
// (NetworkTopologyStrategy).
func parseReplication(s string) (int, map[string]int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 {
			return 0, nil, fmt.Errorf("want at least 1 replica")
		}
		return n, nil, nil
	}
	dcs := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		dc, n, ok := strings.Cut(strings.TrimSpace(part), "=")
		r, err := strconv.Atoi(n)
		if !ok || dc == "" || err != nil || r < 1 {
			return 0, nil, fmt.Errorf("want a replication factor (3) or data center replicas (dc1=3,dc2=3)")
		}
		if _, dup := dcs[dc]; dup {
			return 0, nil, fmt.Errorf("data center %q given twice", dc)
		}
		dcs[dc] = r
	}
	return 0, dcs, nil
}

func (c *Config) validate(roles string) error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("--addr %q: want host:port (%v)", c.Addr, err)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("--metrics-addr %q: want host:port (%v)", c.MetricsAddr, err)
		}
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
	if c.JetStreamReplicas < 1 || c.JetStreamReplicas > 5 {
		return fmt.Errorf("--jetstream-replicas %d: want 1 to 5", c.JetStreamReplicas)
	}
	if c.JetStreamReplicas > 1 && c.NATSURL == "" {
		return fmt.Errorf("--jetstream-replicas %d needs a NATS cluster (--nats-url): the embedded NATS is one server", c.JetStreamReplicas)
	}
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
