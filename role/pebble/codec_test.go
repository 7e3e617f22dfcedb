package pebble

import (
	"bytes"
	"math"
	"testing"

	"github.com/guildhall/guildhall/role"
)

func TestRoleRecord(t *testing.T) {
	for _, r := range []role.Role{
		{ID: 1},
		{ID: 2, Position: 3, Permissions: role.All, Name: "mods", Color: 0xff8800, Hoist: true},
		{ID: 3, Position: -7, Permissions: math.MaxUint64, Name: "\x00é🛡", Color: -1, Mentionable: true},
		{ID: math.MaxUint64, Position: math.MaxInt, Color: math.MinInt, Hoist: true, Mentionable: true},
	} {
		v := encodeRole(r)
		got, err := decodeRole(r.ID, v)
		if err != nil || got != r {
			t.Errorf("decodeRole(encodeRole(%+v)) = %+v, %v", r, got, err)
		}
		for n := range len(v) {
			if _, err := decodeRole(r.ID, v[:n]); err == nil {
				t.Errorf("decodeRole(%+v cut to %d bytes): no error", r, n)
			}
		}
		if _, err := decodeRole(r.ID, append(v, 0)); err == nil {
			t.Errorf("decodeRole(%+v with a trailing byte): no error", r)
		}
	}
	bad := encodeRole(role.Role{ID: 1})
	bad[len(bad)-1] = 4 // an unknown flag
	if _, err := decodeRole(1, bad); err == nil {
		t.Error("decodeRole(unknown flag): no error")
	}
}

func TestOverwriteRecord(t *testing.T) {
	for _, ow := range []role.Overwrite{
		{ID: 1, Type: role.OverwriteRole},
		{ID: 2, Type: role.OverwriteMember, Allow: role.ViewChannel, Deny: math.MaxUint64},
	} {
		k := overwriteKey(77, ow.Type, ow.ID)
		typ, id, err := parseOverwriteKey(k)
		if err != nil || typ != ow.Type || id != ow.ID {
			t.Errorf("parseOverwriteKey(%q) = %v, %d, %v", k, typ, id, err)
		}
		got, err := decodeOverwrite(typ, id, encodeOverwrite(ow))
		if err != nil || got != ow {
			t.Errorf("decodeOverwrite(encodeOverwrite(%+v)) = %+v, %v", ow, got, err)
		}
	}
	if _, _, err := parseOverwriteKey(overwriteKey(77, 2, 1)); err == nil {
		t.Error("parseOverwriteKey(type 2): no error")
	}
}

func TestKeys(t *testing.T) {
	if got, want := key(pRole, 1, 2), []byte("r/role/\x00\x00\x00\x00\x00\x00\x00\x01/\x00\x00\x00\x00\x00\x00\x00\x02"); !bytes.Equal(got, want) {
		t.Errorf("key = %q, want %q", got, want)
	}
	if got, want := overwriteKey(1, role.OverwriteMember, 2), []byte("r/ow/\x00\x00\x00\x00\x00\x00\x00\x01/\x01/\x00\x00\x00\x00\x00\x00\x00\x02"); !bytes.Equal(got, want) {
		t.Errorf("overwriteKey = %q, want %q", got, want)
	}
	// A server's keys sort before the next server's, whatever the role ID.
	if bytes.Compare(key(pRole, 1, math.MaxUint64), dir(pRole, 2)) >= 0 {
		t.Error("keys of server 1 do not sort before those of server 2")
	}
	if end := prefixEnd(dir(pRole, 1)); bytes.Compare(key(pRole, 1, math.MaxUint64), end) >= 0 || bytes.Compare(dir(pRole, 2), end) < 0 {
		t.Errorf("prefixEnd(dir(server 1)) = %q is not the end of server 1", end)
	}
}

// FuzzDecodeRole: any bytes decode to a role or an error, never a panic,
// and a role that decodes encodes back to bytes that decode to it.
func FuzzDecodeRole(f *testing.F) {
	f.Add(encodeRole(role.Role{ID: 1, Position: 3, Permissions: role.All, Name: "mods", Hoist: true}))
	f.Add([]byte{recordV1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeRole(1, v)
		if err != nil {
			return
		}
		again, err := decodeRole(1, encodeRole(r))
		if err != nil || again != r {
			t.Errorf("round trip of %+v = %+v, %v", r, again, err)
		}
	})
}
