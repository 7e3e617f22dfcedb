package pebblekv

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mustOpen opens an in-memory Pebble database holding kv, closed when tb
// ends.
func mustOpen(tb testing.TB, kv map[string]string) *pebble.DB {
	tb.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quietLogger{}})
	if err != nil {
		tb.Fatalf("open pebble: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close pebble: %v", err)
		}
	})
	for k, v := range kv {
		if err := db.Set([]byte(k), []byte(v), pebble.NoSync); err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

// quietLogger drops Pebble's informational messages.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	pebble.DefaultLogger.Errorf(format, args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf(format, args...)
}

func TestGetHas(t *testing.T) {
	db := mustOpen(t, map[string]string{
		"x/n":   string(EncodeUint64(42)),
		"x/bad": "short",
		"x/e":   "",
	})
	if n, ok, err := Get(db, []byte("x/n"), DecodeUint64); err != nil || !ok || n != 42 {
		t.Errorf("Get(x/n) = %d, %v, %v", n, ok, err)
	}
	if n, ok, err := Get(db, []byte("x/none"), DecodeUint64); err != nil || ok || n != 0 {
		t.Errorf("Get(missing) = %d, %v, %v", n, ok, err)
	}
	if _, ok, err := Get(db, []byte("x/bad"), DecodeUint64); err != ErrCorrupt || ok {
		t.Errorf("Get(corrupt) = %v, %v; want false, ErrCorrupt", ok, err)
	}
	// The decoder's result outlives Pebble's buffer.
	v, _, _ := Get(db, []byte("x/bad"), func(v []byte) ([]byte, error) { return append([]byte(nil), v...), nil })
	if string(v) != "short" {
		t.Errorf("Get copy = %q", v)
	}
	for k, want := range map[string]bool{"x/n": true, "x/e": true, "x/none": false, "x": false} {
		if ok, err := Has(db, []byte(k)); err != nil || ok != want {
			t.Errorf("Has(%q) = %v, %v; want %v", k, ok, err, want)
		}
	}
	// A snapshot is a Reader too, and does not see later writes.
	snap := db.NewSnapshot()
	defer snap.Close()
	if err := db.Set([]byte("x/later"), nil, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if ok, err := Has(snap, []byte("x/later")); err != nil || ok {
		t.Errorf("Has(snapshot, later write) = %v, %v", ok, err)
	}
}

func TestScanCount(t *testing.T) {
	kv := map[string]string{"a": "", "b/": "", "b\xff": "", "c": ""}
	for i := range uint64(5) {
		kv[string(Key("b/", i))] = fmt.Sprint(i)
	}
	db := mustOpen(t, kv)
	scan := func(from []byte, stopAfter int) ([]uint64, error) {
		var ids []uint64
		err := Scan(db, []byte("b/"), from, func(k, v []byte) (bool, error) {
			if len(k) != 10 {
				return false, fmt.Errorf("key %q", k)
			}
			if string(v) != fmt.Sprint(LastID(k)) {
				return false, fmt.Errorf("value %q at %q", v, k)
			}
			ids = append(ids, LastID(k))
			return len(ids) < stopAfter, nil
		})
		return ids, err
	}
	// Only keys with the prefix; "b/" itself is 2 bytes and fails the
	// callback, so scan from just past it.
	for _, c := range []struct {
		from      []byte
		stopAfter int
		want      string
	}{
		{Key("b/", 0), 100, "[0 1 2 3 4]"},
		{Key("b/", 2), 100, "[2 3 4]"},
		{Key("b/", 1), 2, "[1 2]"},
		{Key("b/", 5), 100, "[]"},
	} {
		ids, err := scan(c.from, c.stopAfter)
		if got := fmt.Sprint(ids); err != nil || got != c.want {
			t.Errorf("Scan(from %q, stop after %d) = %v, %v; want %s", c.from, c.stopAfter, ids, err, c.want)
		}
	}
	// With no from the scan starts at the prefix itself.
	if _, err := scan(nil, 100); err == nil || err.Error() != `key "b/"` {
		t.Errorf("Scan(from nil) = %v, want the callback's error for key b/", err)
	}
	// The callback's error comes back as it is, and stops the scan.
	stop := errors.New("stop")
	n := 0
	err := Scan(db, Key("b/", 1), nil, func(k, v []byte) (bool, error) { n++; return true, stop })
	if err != stop || n != 1 {
		t.Errorf("Scan with a failing callback = %v after %d keys", err, n)
	}

	for _, c := range []struct {
		prefix string
		limit  int
		want   int
	}{
		{"b/", 100, 6},
		{"b/", 3, 3},
		{"b", 100, 7},
		{"d", 100, 0},
	} {
		if n, err := Count(db, []byte(c.prefix), c.limit); err != nil || n != c.want {
			t.Errorf("Count(%q, %d) = %d, %v; want %d", c.prefix, c.limit, n, err, c.want)
		}
	}
}
