package pebblekv

import (
	"encoding/binary"
	"errors"
	"time"
)

// ErrCorrupt is the error of a record or a value that does not decode.
// It carries no kind, so guildhall.Wrap makes it Internal.
var ErrCorrupt = errors.New("corrupt record")

// Encoder builds a record.
type Encoder struct{ b []byte }

// NewEncoder starts a record in format version.
func NewEncoder(version byte) *Encoder { return &Encoder{b: []byte{version}} }

// NewEncoderSize starts a record in format version with room for size
// bytes, version byte included, for a record whose size is known roughly.
func NewEncoderSize(version byte, size int) *Encoder {
	b := make([]byte, 1, max(size, 1))
	b[0] = version
	return &Encoder{b: b}
}

// Uint appends v as a uvarint.
func (e *Encoder) Uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

// Int appends v as a varint.
func (e *Encoder) Int(v int64) { e.b = binary.AppendVarint(e.b, v) }

// Str appends s, length first.
func (e *Encoder) Str(s string) { e.Uint(uint64(len(s))); e.b = append(e.b, s...) }

// Bytes appends p, length first.
func (e *Encoder) Bytes(p []byte) { e.Uint(uint64(len(p))); e.b = append(e.b, p...) }

// Bool appends v as a uvarint 0 or 1.
func (e *Encoder) Bool(v bool) {
	if v {
		e.Uint(1)
	} else {
		e.Uint(0)
	}
}

// Time appends t as its Unix seconds (varint) and nanoseconds (uvarint).
// The location is not kept.
func (e *Encoder) Time(t time.Time) {
	e.Int(t.Unix())
	e.Uint(uint64(t.Nanosecond()))
}

// Record is the record built so far.
func (e *Encoder) Record() []byte { return e.b }

// Decoder reads a record. The first malformed field makes every later read
// return zero (a Time the Unix epoch), and Err and Done return ErrCorrupt.
// What it returns never aliases its input, which Pebble may reuse.
type Decoder struct {
	b       []byte
	bad     bool
	version byte
}

// NewDecoder starts reading record b, of a type written in versions 1 to
// newest; a record in any other version fails the decoder.
func NewDecoder(b []byte, newest byte) *Decoder {
	if len(b) == 0 || b[0] < 1 || b[0] > newest {
		return &Decoder{bad: true}
	}
	return &Decoder{b: b[1:], version: b[0]}
}

// Version is the record's format version, or 0 if it did not start with
// one of the versions the decoder accepts.
func (d *Decoder) Version() byte { return d.version }

// Uint reads a uvarint.
func (d *Decoder) Uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.Fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Int reads a varint.
func (d *Decoder) Int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.Fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Bool reads a uvarint that must be 0 or 1.
func (d *Decoder) Bool() bool {
	switch d.Uint() {
	case 0:
		return false
	case 1:
		return true
	}
	d.Fail()
	return false
}

// Str reads a length-prefixed string.
func (d *Decoder) Str() string { return string(d.raw()) }

// Bytes reads length-prefixed bytes; none is nil.
func (d *Decoder) Bytes() []byte { return d.AppendBytes(nil) }

// AppendBytes reads length-prefixed bytes and appends them to dst: with
// room in dst, a read that allocates nothing, for a field the caller looks
// at before deciding to keep the record.
func (d *Decoder) AppendBytes(dst []byte) []byte { return append(dst, d.raw()...) }

// Time reads a time written by Encoder.Time, in UTC. Nanoseconds of a
// second or more are corrupt.
func (d *Decoder) Time() time.Time {
	sec, nsec := d.Int(), d.Uint()
	if nsec >= uint64(time.Second) {
		d.Fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// raw reads a length-prefixed field; the result aliases the input.
func (d *Decoder) raw() []byte {
	n := d.Uint()
	if n > uint64(len(d.b)) {
		d.Fail()
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// Len is the number of bytes not read yet: an upper bound for a count
// read from the record.
func (d *Decoder) Len() int { return len(d.b) }

// Fail marks the record corrupt, for a field that decodes but holds a
// value its type never has.
func (d *Decoder) Fail() { d.bad, d.b = true, nil }

// Err is ErrCorrupt if a read so far failed.
func (d *Decoder) Err() error {
	if d.bad {
		return ErrCorrupt
	}
	return nil
}

// Done is ErrCorrupt if a read failed or bytes are left over: nil means the
// whole record was read.
func (d *Decoder) Done() error {
	if d.bad || len(d.b) != 0 {
		return ErrCorrupt
	}
	return nil
}

// EncodeUint64 is n as an 8-byte big-endian value, the format of counters
// and IDs stored as values.
func EncodeUint64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// DecodeUint64 reads an EncodeUint64 value; any other length is corrupt.
func DecodeUint64(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, ErrCorrupt
	}
	return binary.BigEndian.Uint64(v), nil
}
