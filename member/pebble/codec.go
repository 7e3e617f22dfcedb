package pebble

import (
	"encoding/binary"
	"strings"

	"github.com/guildhall/guildhall/internal/pebblekv"
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

// fold is how usernames are compared: case-insensitively.
func fold(s string) string { return strings.ToLower(s) }

// key is prefix followed by ids, each 8-byte big-endian, with nothing
// between them.
func key(prefix string, ids ...uint64) []byte { return pebblekv.Key(prefix, ids...) }

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

func encodeUser(u member.User, passwordHash []byte) []byte {
	e := pebblekv.NewEncoder(recordV1)
	e.Str(u.Username)
	e.Time(u.CreatedAt)
	e.Bytes(passwordHash)
	return e.Record()
}

// userRecord is what m/u/ holds.
type userRecord struct {
	user         member.User
	passwordHash []byte
}

func decodeUser(id uint64) func([]byte) (userRecord, error) {
	return func(v []byte) (userRecord, error) {
		d := pebblekv.NewDecoder(v, recordV1)
		r := userRecord{user: member.User{ID: id, Username: d.Str(), CreatedAt: d.Time()}, passwordHash: d.Bytes()}
		return r, d.Done()
	}
}

func encodeToken(t member.Token) []byte {
	e := pebblekv.NewEncoder(recordV1)
	e.Uint(t.UserID)
	e.Time(t.CreatedAt)
	e.Time(t.ExpiresAt)
	return e.Record()
}

func decodeToken(hash [32]byte) func([]byte) (member.Token, error) {
	return func(v []byte) (member.Token, error) {
		d := pebblekv.NewDecoder(v, recordV1)
		t := member.Token{Hash: hash, UserID: d.Uint(), CreatedAt: d.Time(), ExpiresAt: d.Time()}
		return t, d.Done()
	}
}

func encodeServer(s member.Server) []byte {
	e := pebblekv.NewEncoder(recordV1)
	e.Str(s.Name)
	e.Uint(s.OwnerID)
	e.Time(s.CreatedAt)
	return e.Record()
}

func decodeServer(id uint64) func([]byte) (member.Server, error) {
	return func(v []byte) (member.Server, error) {
		d := pebblekv.NewDecoder(v, recordV1)
		s := member.Server{ID: id, Name: d.Str(), OwnerID: d.Uint(), CreatedAt: d.Time()}
		return s, d.Done()
	}
}

// encodeChannel writes a channel record in version 2: version 1 followed
// by synced.
func encodeChannel(c member.Channel) []byte {
	e := pebblekv.NewEncoder(recordV2)
	e.Uint(c.ServerID)
	e.Str(c.Name)
	e.Uint(uint64(c.Type))
	e.Int(int64(c.Position))
	e.Uint(c.ParentID)
	e.Time(c.CreatedAt)
	e.Bool(c.Synced)
	return e.Record()
}

func decodeChannel(id uint64) func([]byte) (member.Channel, error) {
	return func(v []byte) (member.Channel, error) {
		d := pebblekv.NewDecoder(v, recordV2)
		c := member.Channel{ID: id, ServerID: d.Uint(), Name: d.Str()}
		typ := d.Uint()
		c.Type = member.ChannelType(typ)
		c.Position = int(d.Int())
		c.ParentID = d.Uint()
		c.CreatedAt = d.Time()
		if d.Version() >= recordV2 {
			c.Synced = d.Bool()
		}
		if typ > 0xff {
			d.Fail()
		}
		return c, d.Done()
	}
}

// encodeMember writes a member record in version 2: version 1 followed by
// nick.
func encodeMember(m member.Member) []byte {
	e := pebblekv.NewEncoder(recordV2)
	e.Str(m.Username)
	e.Time(m.JoinedAt)
	e.Str(m.Nick)
	return e.Record()
}

func decodeMember(serverID, userID uint64) func([]byte) (member.Member, error) {
	return func(v []byte) (member.Member, error) {
		d := pebblekv.NewDecoder(v, recordV2)
		m := member.Member{ServerID: serverID, UserID: userID, Username: d.Str(), JoinedAt: d.Time()}
		if d.Version() >= recordV2 {
			m.Nick = d.Str()
		}
		return m, d.Done()
	}
}

func encodeBan(b member.Ban) []byte {
	e := pebblekv.NewEncoder(recordV1)
	e.Str(b.Username)
	e.Uint(b.ActorID)
	e.Str(b.Reason)
	e.Time(b.CreatedAt)
	return e.Record()
}

func decodeBan(serverID, userID uint64) func([]byte) (member.Ban, error) {
	return func(v []byte) (member.Ban, error) {
		d := pebblekv.NewDecoder(v, recordV1)
		b := member.Ban{ServerID: serverID, UserID: userID, Username: d.Str(), ActorID: d.Uint(), Reason: d.Str(), CreatedAt: d.Time()}
		return b, d.Done()
	}
}

func encodeInvite(inv member.Invite) []byte {
	e := pebblekv.NewEncoder(recordV1)
	e.Uint(inv.ServerID)
	e.Uint(inv.CreatorID)
	e.Int(int64(inv.MaxUses))
	e.Int(int64(inv.Uses))
	e.Time(inv.ExpiresAt)
	e.Time(inv.CreatedAt)
	return e.Record()
}

func decodeInvite(code string) func([]byte) (member.Invite, error) {
	return func(v []byte) (member.Invite, error) {
		d := pebblekv.NewDecoder(v, recordV1)
		inv := member.Invite{Code: code, ServerID: d.Uint(), CreatorID: d.Uint(), MaxUses: int(d.Int()), Uses: int(d.Int())}
		inv.ExpiresAt = d.Time()
		inv.CreatedAt = d.Time()
		return inv, d.Done()
	}
}

// encodeCount is a member count: 8 bytes big-endian, no version byte.
func encodeCount(n uint64) []byte { return pebblekv.EncodeUint64(n) }
