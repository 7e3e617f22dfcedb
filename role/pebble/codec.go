package pebble

import (
	"encoding/binary"
	"errors"

	"github.com/guildhall/guildhall/role"
)

// Key families; see doc.go for what each holds.
const (
	pRole       = "r/role/"
	pMemberRole = "r/mrole/"
	pOverwrite  = "r/ow/"
	pVersion    = "r/ver/"
)

// recordV1 is the first byte of every record this package writes.
const recordV1 = 1

// Role record flags.
const (
	flagHoist = 1 << iota
	flagMentionable
	flagsKnown = flagHoist | flagMentionable
)

var errCorrupt = errors.New("corrupt record")

// key is prefix followed by ids, each 8-byte big-endian, separated by '/'.
func key(prefix string, ids ...uint64) []byte {
	k := make([]byte, 0, len(prefix)+9*len(ids))
	k = append(k, prefix...)
	for i, id := range ids {
		if i > 0 {
			k = append(k, '/')
		}
		k = binary.BigEndian.AppendUint64(k, id)
	}
	return k
}

// dir is the prefix shared by every key under ids: key(prefix, ids...)
// followed by the separator.
func dir(prefix string, ids ...uint64) []byte {
	return append(key(prefix, ids...), '/')
}

// overwriteKey is r/ow/<channel>/<type>/<target>.
func overwriteKey(channelID uint64, typ role.OverwriteType, targetID uint64) []byte {
	k := append(dir(pOverwrite, channelID), byte(typ), '/')
	return binary.BigEndian.AppendUint64(k, targetID)
}

// parseOverwriteKey returns the type and target of an overwrite key under
// dir(pOverwrite, channel).
func parseOverwriteKey(k []byte) (role.OverwriteType, uint64, error) {
	const tail = 1 + 1 + 1 + 8 // '/', type, '/', target
	if len(k) < tail || k[len(k)-tail] != '/' || k[len(k)-9] != '/' {
		return 0, 0, errCorrupt
	}
	typ := role.OverwriteType(k[len(k)-10])
	if !validType(typ) {
		return 0, 0, errCorrupt
	}
	return typ, lastID(k), nil
}

// validType reports whether t is an overwrite type this package stores.
func validType(t role.OverwriteType) bool {
	return t == role.OverwriteRole || t == role.OverwriteMember
}

// prefixEnd is the smallest key greater than every key starting with p.
// Every p here starts with "r/", so there is always one.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	panic("pebble: key prefix of 0xff bytes")
}

// lastID is the ID in the last 8 bytes of a key.
func lastID(k []byte) uint64 {
	return binary.BigEndian.Uint64(k[len(k)-8:])
}

// encoder builds a record.
type encoder struct{ b []byte }

func newEncoder() *encoder { return &encoder{b: []byte{recordV1}} }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }

// decoder reads a record. The first malformed field makes every later
// read return zero and done return errCorrupt. What it returns never
// aliases its input, which Pebble may reuse.
type decoder struct {
	b   []byte
	bad bool
}

func newDecoder(b []byte) *decoder {
	if len(b) == 0 || b[0] != recordV1 {
		return &decoder{bad: true}
	}
	return &decoder{b: b[1:]}
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) fail() { d.bad, d.b = true, nil }

// done reports whether the whole record was read without error.
func (d *decoder) done() error {
	if d.bad || len(d.b) != 0 {
		return errCorrupt
	}
	return nil
}

// encodeRole is the value at r/role/<server>/<role>; the ID is in the key.
func encodeRole(r role.Role) []byte {
	e := newEncoder()
	e.int(int64(r.Position))
	e.uint(uint64(r.Permissions))
	e.str(r.Name)
	e.int(int64(r.Color))
	var flags uint64
	if r.Hoist {
		flags |= flagHoist
	}
	if r.Mentionable {
		flags |= flagMentionable
	}
	e.uint(flags)
	return e.b
}

func decodeRole(id uint64, v []byte) (role.Role, error) {
	d := newDecoder(v)
	r := role.Role{ID: id}
	r.Position = int(d.int())
	r.Permissions = role.Permissions(d.uint())
	r.Name = d.str()
	r.Color = int(d.int())
	flags := d.uint()
	if flags&^flagsKnown != 0 {
		d.fail()
	}
	r.Hoist = flags&flagHoist != 0
	r.Mentionable = flags&flagMentionable != 0
	return r, d.done()
}

// encodeOverwrite is the value at r/ow/<channel>/<type>/<target>; the type
// and target are in the key.
func encodeOverwrite(ow role.Overwrite) []byte {
	e := newEncoder()
	e.uint(uint64(ow.Allow))
	e.uint(uint64(ow.Deny))
	return e.b
}

func decodeOverwrite(typ role.OverwriteType, id uint64, v []byte) (role.Overwrite, error) {
	d := newDecoder(v)
	ow := role.Overwrite{ID: id, Type: typ, Allow: role.Permissions(d.uint()), Deny: role.Permissions(d.uint())}
	return ow, d.done()
}

func encodeVersion(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func decodeVersion(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(v), nil
}
