package guildhallpb_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates the code into a temporary directory
// and fails if it differs from what is committed.
func TestGeneratedCodeIsFresh(t *testing.T) {
	for _, tool := range []string{"protoc", "protoc-gen-go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found: CI must be able to check generated code (deploy/test.sh installs it)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command("sh", "../generate.sh", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate: %v\n%s", err, out)
	}
	generated, err := filepath.Glob(filepath.Join(dir, "*.pb.go"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("no generated files (%v)", err)
	}
	committed, _ := filepath.Glob("*.pb.go")
	if len(committed) != len(generated) {
		t.Fatalf("committed %d .pb.go files, generation makes %d: run go generate ./proto/...", len(committed), len(generated))
	}
	for _, g := range generated {
		want, _ := os.ReadFile(g)
		got, err := os.ReadFile(filepath.Base(g))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate ./proto/...", filepath.Base(g))
		}
	}
}
