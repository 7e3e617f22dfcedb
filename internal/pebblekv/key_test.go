package pebblekv

import (
	"bytes"
	"math"
	"testing"
)

func TestKey(t *testing.T) {
	for _, c := range []struct {
		got  []byte
		want string
	}{
		{Key("m/u/"), "m/u/"},
		{Key("m/sm/", 1, 2), "m/sm/\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02"},
		{Key("", math.MaxUint64), "\xff\xff\xff\xff\xff\xff\xff\xff"},
		{KeySep("r/role/", '/'), "r/role/"},
		{KeySep("r/role/", '/', 1), "r/role/\x00\x00\x00\x00\x00\x00\x00\x01"},
		{KeySep("r/role/", '/', 1, 2), "r/role/\x00\x00\x00\x00\x00\x00\x00\x01/\x00\x00\x00\x00\x00\x00\x00\x02"},
	} {
		if string(c.got) != c.want {
			t.Errorf("key = %q, want %q", c.got, c.want)
		}
	}
	if id := LastID(Key("a/e/", 7, 0x0102030405060708)); id != 0x0102030405060708 {
		t.Errorf("LastID = %#x", id)
	}
	// Byte order is numeric order.
	if bytes.Compare(Key("p/", 1, math.MaxUint64), Key("p/", 2, 0)) >= 0 || bytes.Compare(Key("p/", 255), Key("p/", 256)) >= 0 {
		t.Error("keys do not sort in ID order")
	}
}

func TestPrefixEnd(t *testing.T) {
	for p, want := range map[string]string{
		"m/":           "m0",
		"a\xff":        "b",
		"a\xfe\xff":    "a\xff",
		"r/ow/\x00":    "r/ow/\x01",
		"\x00\xff\xff": "\x01",
	} {
		if got := PrefixEnd([]byte(p)); string(got) != want {
			t.Errorf("PrefixEnd(%q) = %q, want %q", p, got, want)
		}
	}
	// It copies: the prefix is still what it was.
	p := []byte("m/sn/")
	PrefixEnd(p)
	if string(p) != "m/sn/" {
		t.Errorf("PrefixEnd changed its argument to %q", p)
	}
	defer func() {
		if recover() == nil {
			t.Error("PrefixEnd(0xff 0xff) did not panic")
		}
	}()
	PrefixEnd([]byte{0xff, 0xff})
}
