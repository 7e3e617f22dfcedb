package pebble

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/guildhall/guildhall/audit"
)

// Key families; see doc.go for what each holds.
const (
	pEntry = "a/e/"
	pTime  = "a/t/"
)

// recordV1 is the first byte of every record this package writes.
const recordV1 = 1

var errCorrupt = errors.New("corrupt record")

// key is prefix followed by ids, each 8-byte big-endian.
func key(prefix string, ids ...uint64) []byte {
	k := make([]byte, 0, len(prefix)+8*len(ids))
	k = append(k, prefix...)
	for _, id := range ids {
		k = binary.BigEndian.AppendUint64(k, id)
	}
	return k
}

// timeKey is the key of an entry in the creation-time index; with
// serverID and id 0 it is where the entries created at t start.
func timeKey(t time.Time, serverID, id uint64) []byte {
	k := make([]byte, 0, len(pTime)+12+16)
	k = append(k, pTime...)
	k = binary.BigEndian.AppendUint64(k, uint64(t.Unix())^(1<<63))
	k = binary.BigEndian.AppendUint32(k, uint32(t.Nanosecond()))
	k = binary.BigEndian.AppendUint64(k, serverID)
	return binary.BigEndian.AppendUint64(k, id)
}

// timeKeyIDs returns the server and entry IDs of a timeKey.
func timeKeyIDs(k []byte) (serverID, id uint64, err error) {
	if len(k) != len(pTime)+12+16 {
		return 0, 0, errCorrupt
	}
	return binary.BigEndian.Uint64(k[len(k)-16:]), binary.BigEndian.Uint64(k[len(k)-8:]), nil
}

// prefixEnd is the smallest key greater than every key starting with p.
// Every p here starts with "a/", so there is always one.
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
func (e *encoder) time(t time.Time) {
	e.int(t.Unix())
	e.uint(uint64(t.Nanosecond()))
}

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

func (d *decoder) raw() []byte {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string { return string(d.raw()) }

func (d *decoder) time() time.Time {
	sec, nsec := d.int(), d.uint()
	if nsec >= uint64(time.Second) {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) fail() { d.bad, d.b = true, nil }

// done reports whether the whole record was read without error.
func (d *decoder) done() error {
	if d.bad || len(d.b) != 0 {
		return errCorrupt
	}
	return nil
}

// encodeEntry is the record of e; actor and action come first so that a
// filtered List can skip an entry without decoding the rest.
func encodeEntry(e audit.Entry) []byte {
	enc := newEncoder()
	enc.uint(e.ActorID)
	enc.str(string(e.Action))
	enc.uint(e.TargetID)
	enc.time(e.CreatedAt)
	enc.str(e.Reason)
	enc.uint(uint64(len(e.Changes)))
	for _, c := range e.Changes {
		enc.str(c.Key)
		enc.str(c.Old)
		enc.str(c.New)
	}
	return enc.b
}

// decodeEntry decodes the record v of entry id in serverID. It returns
// ok false, and no error, if the entry does not match q's filters.
func decodeEntry(serverID, id uint64, v []byte, q audit.Query) (e audit.Entry, ok bool, err error) {
	d := newDecoder(v)
	e = audit.Entry{ID: id, ServerID: serverID, ActorID: d.uint()}
	action := d.raw()
	if d.bad {
		return audit.Entry{}, false, errCorrupt
	}
	if (q.ActorID != 0 && e.ActorID != q.ActorID) || (q.Action != "" && string(action) != string(q.Action)) {
		return audit.Entry{}, false, nil
	}
	e.Action = audit.Action(action)
	e.TargetID = d.uint()
	e.CreatedAt = d.time()
	e.Reason = d.str()
	n := d.uint()
	// Each change takes at least 3 bytes, which bounds a corrupt count.
	if n > uint64(len(d.b))/3 {
		d.fail()
	}
	if n > 0 && !d.bad {
		e.Changes = make([]audit.Change, n)
		for i := range e.Changes {
			e.Changes[i] = audit.Change{Key: d.str(), Old: d.str(), New: d.str()}
		}
	}
	if err := d.done(); err != nil {
		return audit.Entry{}, false, err
	}
	return e, true, nil
}
