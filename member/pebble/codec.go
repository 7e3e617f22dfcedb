package pebble

import (
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/guildhall/guildhall/member"
)

// Key families; see doc.go for what each holds.
const (
	pUser        = "m/u/"
	pUsername    = "m/un/"
	pToken       = "m/t/"
	pServer      = "m/s/"
	pUserServer  = "m/us/"
	pChannel     = "m/c/"
	pServerChan  = "m/sc/"
	pMember      = "m/sm/"
	pMemberName  = "m/sn/"
	pMemberCount = "m/mc/"
	pInvite      = "m/i/"
	pBan         = "m/b/"
)

// Record format versions: the first byte of every record. Each record type
// is written in its newest version and read in every version it was ever
// written in; a version a record type never had is corrupt.
const (
	// recordV1 is the first format of every record type.
	recordV1 = 1
	// recordV2 adds a field at the end: channels gained synced, members
	// gained nick. Version 1 records read as not synced and no nick.
	recordV2 = 2
)

var errCorrupt = errors.New("corrupt record")

// fold is how usernames are compared: case-insensitively.
func fold(s string) string { return strings.ToLower(s) }

// key is prefix followed by ids, each 8-byte big-endian.
func key(prefix string, ids ...uint64) []byte {
	k := make([]byte, 0, len(prefix)+8*len(ids))
	k = append(k, prefix...)
	for _, id := range ids {
		k = binary.BigEndian.AppendUint64(k, id)
	}
	return k
}

func strKey(prefix, s string) []byte {
	return append([]byte(prefix), s...)
}

// appendEscaped appends s so that the bytes of two escaped strings, each
// followed by nameEnd, compare like the strings do and a prefix of s
// escapes to a prefix of its escaping.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			b = append(b, 0, 0xff)
			continue
		}
		b = append(b, s[i])
	}
	return b
}

var nameEnd = []byte{0, 1}

// memberNameKey is the key of a member in the (name, user ID) index.
func memberNameKey(serverID uint64, username string, userID uint64) []byte {
	k := appendEscaped(key(pMemberName, serverID), fold(username))
	k = append(k, nameEnd...)
	return binary.BigEndian.AppendUint64(k, userID)
}

// prefixEnd is the smallest key greater than every key starting with p.
// Every p here starts with "m/", so there is always one.
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

// newEncoder starts a record in format version.
func newEncoder(version byte) *encoder { return &encoder{b: []byte{version}} }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(p []byte) {
	e.uint(uint64(len(p)))
	e.b = append(e.b, p...)
}
func (e *encoder) bool(v bool) {
	if v {
		e.uint(1)
	} else {
		e.uint(0)
	}
}
func (e *encoder) time(t time.Time) {
	e.int(t.Unix())
	e.uint(uint64(t.Nanosecond()))
}

// decoder reads a record. The first malformed field makes every later
// read return zero and done return errCorrupt. What it returns never
// aliases its input, which Pebble may reuse.
type decoder struct {
	b       []byte
	bad     bool
	version byte // the record's format version
}

// newDecoder starts reading a record whose type was written in versions 1
// to newest.
func newDecoder(b []byte, newest byte) *decoder {
	if len(b) == 0 || b[0] < recordV1 || b[0] > newest {
		return &decoder{bad: true}
	}
	return &decoder{b: b[1:], version: b[0]}
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

func (d *decoder) bool() bool {
	switch d.uint() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

func (d *decoder) str() string   { return string(d.raw()) }
func (d *decoder) bytes() []byte { return append([]byte(nil), d.raw()...) }

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

func encodeUser(u member.User, passwordHash []byte) []byte {
	e := newEncoder(recordV1)
	e.str(u.Username)
	e.time(u.CreatedAt)
	e.bytes(passwordHash)
	return e.b
}

// userRecord is what m/u/ holds.
type userRecord struct {
	user         member.User
	passwordHash []byte
}

func decodeUser(id uint64) func([]byte) (userRecord, error) {
	return func(v []byte) (userRecord, error) {
		d := newDecoder(v, recordV1)
		r := userRecord{user: member.User{ID: id, Username: d.str(), CreatedAt: d.time()}, passwordHash: d.bytes()}
		return r, d.done()
	}
}

func encodeToken(t member.Token) []byte {
	e := newEncoder(recordV1)
	e.uint(t.UserID)
	e.time(t.CreatedAt)
	e.time(t.ExpiresAt)
	return e.b
}

func decodeToken(hash [32]byte) func([]byte) (member.Token, error) {
	return func(v []byte) (member.Token, error) {
		d := newDecoder(v, recordV1)
		t := member.Token{Hash: hash, UserID: d.uint(), CreatedAt: d.time(), ExpiresAt: d.time()}
		return t, d.done()
	}
}

func encodeServer(s member.Server) []byte {
	e := newEncoder(recordV1)
	e.str(s.Name)
	e.uint(s.OwnerID)
	e.time(s.CreatedAt)
	return e.b
}

func decodeServer(id uint64) func([]byte) (member.Server, error) {
	return func(v []byte) (member.Server, error) {
		d := newDecoder(v, recordV1)
		s := member.Server{ID: id, Name: d.str(), OwnerID: d.uint(), CreatedAt: d.time()}
		return s, d.done()
	}
}

// encodeChannel writes a channel record in version 2: version 1 followed
// by synced.
func encodeChannel(c member.Channel) []byte {
	e := newEncoder(recordV2)
	e.uint(c.ServerID)
	e.str(c.Name)
	e.uint(uint64(c.Type))
	e.int(int64(c.Position))
	e.uint(c.ParentID)
	e.time(c.CreatedAt)
	e.bool(c.Synced)
	return e.b
}

func decodeChannel(id uint64) func([]byte) (member.Channel, error) {
	return func(v []byte) (member.Channel, error) {
		d := newDecoder(v, recordV2)
		c := member.Channel{ID: id, ServerID: d.uint(), Name: d.str()}
		typ := d.uint()
		c.Type = member.ChannelType(typ)
		c.Position = int(d.int())
		c.ParentID = d.uint()
		c.CreatedAt = d.time()
		if d.version >= recordV2 {
			c.Synced = d.bool()
		}
		if typ > 0xff {
			d.fail()
		}
		return c, d.done()
	}
}

// encodeMember writes a member record in version 2: version 1 followed by
// nick.
func encodeMember(m member.Member) []byte {
	e := newEncoder(recordV2)
	e.str(m.Username)
	e.time(m.JoinedAt)
	e.str(m.Nick)
	return e.b
}

func decodeMember(serverID, userID uint64) func([]byte) (member.Member, error) {
	return func(v []byte) (member.Member, error) {
		d := newDecoder(v, recordV2)
		m := member.Member{ServerID: serverID, UserID: userID, Username: d.str(), JoinedAt: d.time()}
		if d.version >= recordV2 {
			m.Nick = d.str()
		}
		return m, d.done()
	}
}

func encodeBan(b member.Ban) []byte {
	e := newEncoder(recordV1)
	e.str(b.Username)
	e.uint(b.ActorID)
	e.str(b.Reason)
	e.time(b.CreatedAt)
	return e.b
}

func decodeBan(serverID, userID uint64) func([]byte) (member.Ban, error) {
	return func(v []byte) (member.Ban, error) {
		d := newDecoder(v, recordV1)
		b := member.Ban{ServerID: serverID, UserID: userID, Username: d.str(), ActorID: d.uint(), Reason: d.str(), CreatedAt: d.time()}
		return b, d.done()
	}
}

func encodeInvite(inv member.Invite) []byte {
	e := newEncoder(recordV1)
	e.uint(inv.ServerID)
	e.uint(inv.CreatorID)
	e.int(int64(inv.MaxUses))
	e.int(int64(inv.Uses))
	e.time(inv.ExpiresAt)
	e.time(inv.CreatedAt)
	return e.b
}

func decodeInvite(code string) func([]byte) (member.Invite, error) {
	return func(v []byte) (member.Invite, error) {
		d := newDecoder(v, recordV1)
		inv := member.Invite{Code: code, ServerID: d.uint(), CreatorID: d.uint(), MaxUses: int(d.int()), Uses: int(d.int())}
		inv.ExpiresAt = d.time()
		inv.CreatedAt = d.time()
		return inv, d.done()
	}
}

func encodeCount(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func decodeCount(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(v), nil
}

func decodeID(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(v), nil
}
