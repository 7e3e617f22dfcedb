package pebblekv

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"
)

var at = time.Date(2026, 3, 1, 12, 0, 0, 5_000_000, time.UTC)

// fields is one of each field type, as a store's record would hold them.
type fields struct {
	u    uint64
	i    int64
	s    string
	p    []byte
	b    bool
	t    time.Time
	tail string // a second version adds it
}

func encode(version byte, f fields) []byte {
	e := NewEncoder(version)
	e.Uint(f.u)
	e.Int(f.i)
	e.Str(f.s)
	e.Bytes(f.p)
	e.Bool(f.b)
	e.Time(f.t)
	if version >= 2 {
		e.Str(f.tail)
	}
	return e.Record()
}

func decode(v []byte) (fields, byte, error) {
	d := NewDecoder(v, 2)
	f := fields{u: d.Uint(), i: d.Int(), s: d.Str(), p: d.Bytes(), b: d.Bool(), t: d.Time()}
	if d.Version() >= 2 {
		f.tail = d.Str()
	}
	return f, d.Version(), d.Done()
}

func equal(a, b fields) bool {
	return a.u == b.u && a.i == b.i && a.s == b.s && bytes.Equal(a.p, b.p) && a.b == b.b && a.t == b.t && a.tail == b.tail
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []fields{
		{t: time.Unix(0, 0).UTC()},
		{u: 1, i: -1, s: "general", p: []byte{0, 1, 2}, b: true, t: at, tail: "nick"},
		{u: math.MaxUint64, i: math.MinInt64, s: "\x00é👑", p: bytes.Repeat([]byte{0xff}, 300), t: time.Unix(-62135596800, 999_999_999).UTC()},
		{i: math.MaxInt64, s: string(make([]byte, 1<<16)), b: true, t: time.Unix(math.MaxInt32*4, 1).UTC()},
	} {
		for _, version := range []byte{1, 2} {
			want := f
			if version == 1 {
				want.tail = ""
			}
			v := encode(version, f)
			got, gotVersion, err := decode(v)
			if err != nil || gotVersion != version || !equal(got, want) {
				t.Errorf("version %d: decode(encode(%+v)) = %+v, %d, %v", version, want, got, gotVersion, err)
			}
			// Every cut is corrupt, and so is a trailing byte.
			for n := range len(v) {
				if _, _, err := decode(v[:n]); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("version %d, %+v cut to %d bytes: error %v, want ErrCorrupt", version, want, n, err)
				}
			}
			if _, _, err := decode(append(v, 0)); !errors.Is(err, ErrCorrupt) {
				t.Errorf("version %d, %+v with a trailing byte: error %v, want ErrCorrupt", version, want, err)
			}
		}
	}
}

// The bytes on disk: every store's existing data is in this format.
func TestEncoding(t *testing.T) {
	e := NewEncoder(1)
	e.Uint(1000)
	e.Int(-2)
	e.Str("ab")
	e.Bytes(nil)
	e.Bool(true)
	e.Bool(false)
	e.Time(at)
	want := "\x01" + // version
		"\xe8\x07" + // uvarint 1000
		"\x03" + // varint -2
		"\x02ab" + // "ab"
		"\x00" + // no bytes
		"\x01\x00" + // true, false
		"\x80\xa9\xa1\x9a\x0d" + "\xc0\x96\xb1\x02" // 2026-03-01T12:00:00Z as varint seconds, 5ms as uvarint nanoseconds
	if got := e.Record(); string(got) != want {
		t.Errorf("record = %q, want %q", got, want)
	}
	sized := NewEncoderSize(1, 64)
	sized.Uint(1000)
	sized.Int(-2)
	if got := sized.Record(); string(got) != want[:4] || cap(got) != 64 {
		t.Errorf("sized record = %q (cap %d), want %q (cap 64)", got, cap(got), want[:4])
	}
	if got := EncodeUint64(0x0102030405060708); string(got) != "\x01\x02\x03\x04\x05\x06\x07\x08" {
		t.Errorf("EncodeUint64 = %q", got)
	}
}

func TestCorrupt(t *testing.T) {
	valid := encode(1, fields{s: "x", t: at})
	for name, v := range map[string][]byte{
		"empty":                           nil,
		"version 0":                       append([]byte{0}, valid[1:]...),
		"version 3":                       append([]byte{3}, valid[1:]...),
		"version 0xff":                    append([]byte{0xff}, valid[1:]...),
		"overlong uint":                   append([]byte{1}, bytes.Repeat([]byte{0x80}, 11)...),
		"uint too large":                  {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
		"length past end":                 {1, 0, 0, 5, 'a', 'b'},
		"huge length":                     {1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"bool 2":                          {1, 0, 0, 0, 0, 2, 0, 0},
		"nanos 1e9":                       {1, 0, 0, 0, 0, 0, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03},
		"version 1 with a version 2 tail": append(encode(1, fields{t: at}), 0),
	} {
		if f, _, err := decode(v); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decode = %+v, %v; want ErrCorrupt", name, f, err)
		}
	}
}

// After the first failure every read is zero, even where the bytes would
// have decoded.
func TestSticky(t *testing.T) {
	d := NewDecoder([]byte{1, 5, 'a', 'b', 7, 7}, 1)
	if s := d.Str(); s != "" || d.Err() == nil {
		t.Fatalf("Str past the end = %q, %v", s, d.Err())
	}
	if u, i, b, p, tm := d.Uint(), d.Int(), d.Bool(), d.Bytes(), d.Time(); u != 0 || i != 0 || b || p != nil || tm.Unix() != 0 || tm.Nanosecond() != 0 {
		t.Errorf("reads after a failure = %d, %d, %v, %q, %v; want zero and the Unix epoch", u, i, b, p, tm)
	}
	if d.Len() != 0 || d.Done() != ErrCorrupt {
		t.Errorf("after a failure Len = %d, Done = %v", d.Len(), d.Done())
	}

	d = NewDecoder([]byte{1, 7, 1}, 1)
	if d.Uint() != 7 || d.Err() != nil || d.Len() != 1 {
		t.Fatal("Uint(7) failed")
	}
	d.Fail() // a value the store's record type never has
	if d.Uint() != 0 || d.Done() != ErrCorrupt {
		t.Error("Fail is not sticky")
	}
	if d := NewDecoder([]byte{3}, 2); d.Version() != 0 || d.Done() != ErrCorrupt {
		t.Errorf("version 3 of a type at 2: Version %d, Done %v", d.Version(), d.Done())
	}
}

// Nothing a Decoder returns shares memory with its input, which Pebble
// reuses.
func TestNoAliasing(t *testing.T) {
	v := encode(1, fields{s: "name", p: []byte("hash")})
	d := NewDecoder(v, 1)
	d.Uint()
	d.Int()
	s, p := d.Str(), d.Bytes()
	var buf [2]byte
	v2 := encode(1, fields{s: "abc"})
	d2 := NewDecoder(v2, 1)
	d2.Uint()
	d2.Int()
	a := d2.AppendBytes(buf[:0])
	for i := range v {
		v[i] = 'X'
	}
	for i := range v2 {
		v2[i] = 'X'
	}
	if s != "name" || string(p) != "hash" || string(a) != "abc" {
		t.Errorf("after the input changed: %q, %q, %q", s, p, a)
	}
	if got := NewDecoder([]byte{1, 0}, 1).Bytes(); got != nil {
		t.Errorf("empty Bytes = %#v, want nil", got)
	}
}

func TestDecodeUint64(t *testing.T) {
	for _, n := range []uint64{0, 1, math.MaxUint64} {
		if got, err := DecodeUint64(EncodeUint64(n)); err != nil || got != n {
			t.Errorf("DecodeUint64(EncodeUint64(%d)) = %d, %v", n, got, err)
		}
	}
	for _, v := range [][]byte{nil, make([]byte, 7), make([]byte, 9)} {
		if _, err := DecodeUint64(v); err != ErrCorrupt {
			t.Errorf("DecodeUint64(%d bytes) = %v, want ErrCorrupt", len(v), err)
		}
	}
}

// FuzzDecoder: any bytes decode to fields or ErrCorrupt, never a panic,
// and fields that decode encode back to the same bytes (the encoding of a
// value is unique) and so decode to themselves.
func FuzzDecoder(f *testing.F) {
	f.Add(encode(1, fields{u: 1, i: -1, s: "general", p: []byte{0}, b: true, t: at}))
	f.Add(encode(2, fields{s: "x", t: at, tail: "nick"}))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		got, version, err := decode(v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v is not ErrCorrupt", err)
			}
			return
		}
		again := encode(version, got)
		if !bytes.Equal(again, v) {
			// Varints have one shortest form, but Go's decoders accept
			// a longer one (a trailing 0x80 0x00, ...): compare values.
			if got2, _, err := decode(again); err != nil || !equal(got2, got) {
				t.Fatalf("round trip of %+v = %+v, %v", got, got2, err)
			}
		}
	})
}
