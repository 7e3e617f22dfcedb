package pebble

import (
	"encoding/binary"

	"github.com/guildhall/guildhall/internal/pebblekv"
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

// key is prefix followed by ids, each 8-byte big-endian, separated by '/'.
func key(prefix string, ids ...uint64) []byte { return pebblekv.KeySep(prefix, '/', ids...) }

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
		return 0, 0, pebblekv.ErrCorrupt
	}
	typ := role.OverwriteType(k[len(k)-10])
	if !validType(typ) {
		return 0, 0, pebblekv.ErrCorrupt
	}
	return typ, pebblekv.LastID(k), nil
}

// validType reports whether t is an overwrite type this package stores.
func validType(t role.OverwriteType) bool {
	return t == role.OverwriteRole || t == role.OverwriteMember
}

// encodeRole is the value at r/role/<server>/<role>; the ID is in the key.
func encodeRole(r role.Role) []byte {
	e := pebblekv.NewEncoder(recordV1)
	e.Int(int64(r.Position))
	e.Uint(uint64(r.Permissions))
	e.Str(r.Name)
	e.Int(int64(r.Color))
	var flags uint64
	if r.Hoist {
		flags |= flagHoist
	}
	if r.Mentionable {
		flags |= flagMentionable
	}
	e.Uint(flags)
	return e.Record()
}

func decodeRole(id uint64, v []byte) (role.Role, error) {
	d := pebblekv.NewDecoder(v, recordV1)
	r := role.Role{ID: id}
	r.Position = int(d.Int())
	r.Permissions = role.Permissions(d.Uint())
	r.Name = d.Str()
	r.Color = int(d.Int())
	flags := d.Uint()
	if flags&^flagsKnown != 0 {
		d.Fail()
	}
	r.Hoist = flags&flagHoist != 0
	r.Mentionable = flags&flagMentionable != 0
	return r, d.Done()
}

// encodeOverwrite is the value at r/ow/<channel>/<type>/<target>; the type
// and target are in the key.
func encodeOverwrite(ow role.Overwrite) []byte {
	e := pebblekv.NewEncoder(recordV1)
	e.Uint(uint64(ow.Allow))
	e.Uint(uint64(ow.Deny))
	return e.Record()
}

func decodeOverwrite(typ role.OverwriteType, id uint64, v []byte) (role.Overwrite, error) {
	d := pebblekv.NewDecoder(v, recordV1)
	ow := role.Overwrite{ID: id, Type: typ, Allow: role.Permissions(d.Uint()), Deny: role.Permissions(d.Uint())}
	return ow, d.Done()
}
