package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
	"github.com/guildhall/guildhall/snowflake"
)

// deployProcess is one guildhall container found in deploy/.
type deployProcess struct {
	where    string
	args     []string
	env      map[string]string
	replicas int
	nodeIDs  []int // the node numbers its replicas get; nil when random
}

// parse runs the process's arguments and environment through ParseFlags,
// exactly as the binary would.
func (p deployProcess) parse(t *testing.T) (Config, bool) {
	t.Helper()
	m := NewMain()
	if err := m.ParseFlags(p.args, func(k string) string { return p.env[k] }); err != nil {
		t.Errorf("%s: guildhall %v (and its GUILDHALL_* environment): %v", p.where, p.args, err)
		return Config{}, false
	}
	return m.Config, true
}

// checkCluster checks that the processes of one deployment are valid and
// make a whole cluster: a migrate, every role, several link and message
// processes, and no snowflake node number given to two processes.
func checkCluster(t *testing.T, name string, procs []deployProcess) {
	t.Helper()
	count := map[string]int{}
	nodes := map[int]string{}
	for _, p := range procs {
		c, ok := p.parse(t)
		if !ok {
			continue
		}
		if c.Command == CommandMigrate {
			count["migrate"] += p.replicas
			continue
		}
		if c.Store != StoreCQL {
			t.Errorf("%s: store %q, want cql", p.where, c.Store)
		}
		for _, r := range c.Roles {
			count[r] += p.replicas
		}
		ids := p.nodeIDs
		if ids == nil && c.NodeID >= 0 {
			ids = []int{c.NodeID}
		}
		if len(ids) != p.replicas {
			t.Errorf("%s: %d replicas but node numbers %v (each process needs its own --node-id)", p.where, p.replicas, ids)
		}
		for _, id := range ids {
			if id < 0 || id > snowflake.MaxNode {
				t.Errorf("%s: node number %d out of range", p.where, id)
			}
			if other, dup := nodes[id]; dup {
				t.Errorf("%s and %s share node number %d", p.where, other, id)
			}
			nodes[id] = p.where
		}
	}
	want := map[string]int{"migrate": 1, RoleAPI: 1, RoleLink: 2, RoleMessage: 2, RoleSubscribe: 1}
	for k, n := range want {
		if count[k] < n {
			t.Errorf("%s: %d %s processes, want at least %d (%v)", name, count[k], k, n, count)
		}
	}
}

func strs(tb testing.TB, where string, v any) []string {
	tb.Helper()
	if v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		tb.Fatalf("%s: want a list of strings, got %T", where, v)
	}
	out := make([]string, len(list))
	for i, s := range list {
		str, ok := s.(string)
		if !ok {
			tb.Fatalf("%s: item %d is %T, want a string", where, i, s)
		}
		out[i] = str
	}
	return out
}

func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

func TestDeployCompose(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "compose", "docker-compose.yml")
	docs := yamlDocs(t, path)
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents", path, len(docs))
	}
	services, _ := docs[0]["services"].(map[string]any)
	var procs []deployProcess
	for name, v := range services {
		svc := v.(map[string]any)
		if img, _ := svc["image"].(string); !strings.HasPrefix(img, "guildhall") {
			continue
		}
		where := "compose service " + name
		env := map[string]string{}
		for k, v := range svc["environment"].(map[string]any) {
			s, ok := v.(string)
			if !ok {
				t.Errorf("%s: %s is %T; quote it so compose passes it as written", where, k, v)
			}
			env[k] = s
		}
		procs = append(procs, deployProcess{where: where, args: strs(t, where, svc["command"]), env: env, replicas: 1})
	}
	checkCluster(t, path, procs)

	// The proxy sends traffic to services that exist, link ones for the gateway.
	conf, err := os.ReadFile(filepath.Join("..", "..", "deploy", "compose", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	upstreams := regexp.MustCompile(`(?m)^\s*server ([a-z0-9-]+):8080;`).FindAllStringSubmatch(string(conf), -1)
	if len(upstreams) < 3 {
		t.Errorf("nginx.conf: upstream servers %v", upstreams)
	}
	for _, u := range upstreams {
		svc, ok := services[u[1]].(map[string]any)
		if !ok {
			t.Errorf("nginx.conf names %s, not a compose service", u[1])
			continue
		}
		if cmd := strings.Join(strs(t, u[1], svc["command"]), " "); !strings.Contains(cmd, "--roles link") && !strings.Contains(cmd, "--roles api") {
			t.Errorf("nginx.conf sends traffic to %s, which runs %q", u[1], cmd)
		}
	}
}

// TestDockerfile: the image builds this binary with a Go at least as new
// as go.mod asks for.
func TestDockerfile(t *testing.T) {
	df, err := os.ReadFile(filepath.Join("..", "..", "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	image := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\d+)\.(\d+)$`).FindStringSubmatch(string(df))
	mod := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(gomod))
	if image == nil || mod == nil {
		t.Fatalf("Go versions: Dockerfile %v, go.mod %v", image, mod)
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	if atoi(image[1]) < atoi(mod[1]) || atoi(image[1]) == atoi(mod[1]) && atoi(image[2]) < atoi(mod[2]) {
		t.Errorf("Dockerfile builds with Go %s.%s, go.mod needs %s.%s", image[1], image[2], mod[1], mod[2])
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/guildhall", `ENTRYPOINT ["/guildhall"]`} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
}

func TestDeployKubernetes(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "k8s")
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	var resources []string
	configMaps := map[string]map[string]any{}
	var workloads []map[string]any
	for _, f := range files {
		for _, d := range yamlDocs(t, f) {
			kind, _ := d["kind"].(string)
			meta, _ := d["metadata"].(map[string]any)
			switch kind {
			case "Kustomization":
				resources = strs(t, f, d["resources"])
				continue
			case "":
				t.Errorf("%s: a document without kind", f)
			case "ConfigMap":
				data, _ := d["data"].(map[string]any)
				configMaps[meta["name"].(string)] = data
			case "StatefulSet", "Deployment", "Job":
				workloads = append(workloads, d)
			}
			if kind != "Namespace" && meta["namespace"] != "guildhall" {
				t.Errorf("%s: %s %v is not in namespace guildhall", f, kind, meta["name"])
			}
		}
	}
	var names []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			names = append(names, b)
		}
	}
	slices.Sort(names)
	slices.Sort(resources)
	if !slices.Equal(names, resources) {
		t.Errorf("kustomization.yaml lists %v, the directory holds %v", resources, names)
	}

	var procs []deployProcess
	for _, w := range workloads {
		kind := w["kind"].(string)
		name := w["metadata"].(map[string]any)["name"].(string)
		spec := w["spec"].(map[string]any)
		replicas, start := 1, 0
		if r, ok := spec["replicas"].(int); ok {
			replicas = r
		}
		if o, ok := spec["ordinals"].(map[string]any); ok {
			start = o["start"].(int)
		}
		pod := spec["template"].(map[string]any)["spec"].(map[string]any)
		for _, c := range pod["containers"].([]any) {
			c := c.(map[string]any)
			if img, _ := c["image"].(string); !strings.HasPrefix(img, "guildhall") {
				continue
			}
			where := fmt.Sprintf("%s %s container %s", kind, name, c["name"])
			p := deployProcess{where: where, args: strs(t, where, c["args"]), env: map[string]string{}, replicas: replicas}
			for _, ef := range asList(c["envFrom"]) {
				ref, _ := ef.(map[string]any)["configMapRef"].(map[string]any)
				data, ok := configMaps[fmt.Sprint(ref["name"])]
				if !ok {
					t.Errorf("%s: envFrom %v: no such ConfigMap", where, ef)
				}
				for k, v := range data {
					p.env[k] = fmt.Sprint(v)
				}
			}
			nodeFromIndex := false
			for _, e := range asList(c["env"]) {
				e := e.(map[string]any)
				k := e["name"].(string)
				if v, ok := e["value"]; ok {
					p.env[k] = fmt.Sprint(v)
					continue
				}
				field := fmt.Sprint(e["valueFrom"].(map[string]any)["fieldRef"].(map[string]any)["fieldPath"])
				switch field {
				case "metadata.labels['apps.kubernetes.io/pod-index']":
					if kind != "StatefulSet" {
						t.Errorf("%s: the pod-index label exists on StatefulSet pods only", where)
					}
					p.env[k] = fmt.Sprint(start)
					if k == "GUILDHALL_NODE_ID" {
						nodeFromIndex = true
					}
				case "metadata.name":
					p.env[k] = fmt.Sprintf("%s-%d", name, start)
				default:
					t.Errorf("%s: %s from %s: the test does not know this field", where, k, field)
				}
			}
			if nodeFromIndex {
				for i := range replicas {
					p.nodeIDs = append(p.nodeIDs, start+i)
				}
			}
			procs = append(procs, p)
		}
	}
	checkCluster(t, dir, procs)
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestComposeNginx runs deploy/compose/nginx.conf in a real nginx, with
// its upstreams pointed at an in-process guildhall: REST goes through, and
// a browser-like gateway connection (Origin = the proxy's address) is
// upgraded, identified and gets live events. Skipped where nginx is not
// installed (it is not a dependency of the project; apt install nginx-light).
func TestComposeNginx(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx not installed")
		}
		nginx = "/usr/sbin/nginx"
	}
	m := MustRunMain(t, t.TempDir())
	conf, err := os.ReadFile(filepath.Join("..", "..", "deploy", "compose", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := freePort(t)
	text := regexp.MustCompile(`server (api|link-1|link-2):8080;`).ReplaceAllString(string(conf), "server "+m.Addr()+";")
	text = strings.Replace(text, "listen 8080;", "listen "+proxy+";", 1)
	text = strings.Replace(text, "http {", "http {\n\taccess_log off;", 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"),
		"-g", "daemon off; pid "+filepath.Join(dir, "nginx.pid")+"; error_log "+filepath.Join(dir, "error.log")+";")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		_ = cmd.Wait()
		if t.Failed() {
			errs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx: %s\n%s", stderr.String(), errs)
		}
	})
	waitHealthy(t, proxy)

	alice := register(t, "http://"+proxy, "alice")
	var srv struct{ ID string }
	alice.do("POST", "/servers", map[string]string{"name": "Proxied"}, 201, &srv)
	var chans []struct{ ID string }
	alice.do("GET", "/servers/"+srv.ID+"/channels", nil, 200, &chans)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+proxy+"/gateway?encoding=json", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"http://" + proxy}},
	})
	if err != nil {
		t.Fatalf("gateway through nginx with a same-origin Origin: %v", err)
	}
	defer conn.CloseNow()
	g := &gw{tb: t, conn: conn, json: true}
	g.read() // hello
	g.write(&pb.Frame{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: alice.token}}})
	if g.read().GetReady() == nil {
		t.Fatal("no ready through nginx")
	}
	g.subscribe(parseID(t, chans[0].ID))
	alice.do("POST", "/channels/"+chans[0].ID+"/messages", map[string]string{"content": "via nginx"}, 201, nil)
	for {
		f := g.read()
		if f.GetEvent().GetMessageCreate().GetContent() == "via nginx" {
			break
		}
	}
}

// TestDeployNATS reads the NATS settings of both deployments with the NATS
// server's own parsers (the nats-server module guildhall embeds): the
// Kubernetes nats.conf and each compose server's command line. Each must
// be a JetStream server in cluster "guildhall" with routes to all three.
func TestDeployNATS(t *testing.T) {
	check := func(where string, o *server.Options, name string) {
		t.Helper()
		if !o.JetStream || o.Cluster.Name != "guildhall" || len(o.Routes) != 3 || o.ServerName != name || o.Port != 4222 {
			t.Errorf("%s: jetstream %v, cluster %q, %d routes, server name %q (want %q), client port %d",
				where, o.JetStream, o.Cluster.Name, len(o.Routes), o.ServerName, name, o.Port)
		}
	}

	// Kubernetes: the ConfigMap's nats.conf, with the pod's name.
	var conf string
	for _, d := range yamlDocs(t, filepath.Join("..", "..", "deploy", "k8s", "nats.yaml")) {
		if d["kind"] == "ConfigMap" {
			conf, _ = d["data"].(map[string]any)["nats.conf"].(string)
		}
	}
	if conf == "" {
		t.Fatal("deploy/k8s/nats.yaml: no nats.conf")
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAME", "nats-1")
	o, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("k8s nats.conf: %v", err)
	}
	check("k8s nats.conf", o, "nats-1")

	// Compose: each server's flags.
	services, _ := yamlDocs(t, filepath.Join("..", "..", "deploy", "compose", "docker-compose.yml"))[0]["services"].(map[string]any)
	n := 0
	for name, v := range services {
		svc := v.(map[string]any)
		if img, _ := svc["image"].(string); !strings.HasPrefix(img, "nats:") {
			continue
		}
		n++
		args := strs(t, name, svc["command"])
		if len(args) == 0 || args[0] != "nats-server" {
			t.Errorf("compose %s: command %v, want nats-server first", name, args)
			continue
		}
		fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o, err := server.ConfigureOptions(fs, args[1:], func() {}, func() {}, func() {})
		if err != nil {
			t.Errorf("compose %s: %v", name, err)
			continue
		}
		if o.Port == 0 {
			o.Port = 4222 // the default when no --port is given
		}
		check("compose "+name, o, name)
	}
	if n != 3 {
		t.Errorf("compose: %d NATS servers, want 3", n)
	}
}

// TestDeployRedis starts the real redis-server (the one deploy/testdeps
// installs) with each deployment's Redis arguments, on a loopback port of
// its own: a directive Redis does not know makes it exit at once.
func TestDeployRedis(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not installed (deploy/testdeps/redis.sh installs it)")
		}
		t.Skip("redis-server not installed")
	}
	var argSets = map[string][]string{}
	services, _ := yamlDocs(t, filepath.Join("..", "..", "deploy", "compose", "docker-compose.yml"))[0]["services"].(map[string]any)
	argSets["compose redis"] = strs(t, "compose redis", services["redis"].(map[string]any)["command"])
	for _, d := range yamlDocs(t, filepath.Join("..", "..", "deploy", "k8s", "redis.yaml")) {
		if d["kind"] == "StatefulSet" {
			c := d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
			argSets["k8s redis"] = strs(t, "k8s redis", c["args"])
		}
	}
	if len(argSets) != 2 {
		t.Fatalf("redis arguments found: %v", argSets)
	}
	for where, args := range argSets {
		if len(args) == 0 || args[0] != "redis-server" {
			t.Errorf("%s: %v, want redis-server first", where, args)
			continue
		}
		addr := freePort(t)
		_, port, _ := net.SplitHostPort(addr)
		cmd := exec.Command(bin, append(args[1:], "--port", port, "--bind", "127.0.0.1", "--dir", t.TempDir(), "--daemonize", "no", "--save", "")...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		checkFor(t, func() error {
			select {
			case err := <-exited:
				exited <- err
				return nil
			default:
			}
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err
		})
		select {
		case err := <-exited:
			t.Errorf("%s: redis-server %v exited: %v\n%s", where, args[1:], err, out.String())
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}
}
