package pebblekv

import "encoding/binary"

// Key returns prefix followed by ids, each 8 bytes big-endian.
func Key(prefix string, ids ...uint64) []byte {
	k := make([]byte, 0, len(prefix)+8*len(ids))
	k = append(k, prefix...)
	for _, id := range ids {
		k = binary.BigEndian.AppendUint64(k, id)
	}
	return k
}

// KeySep returns prefix followed by ids, each 8 bytes big-endian, with sep
// between two IDs (not after the prefix, not after the last ID).
func KeySep(prefix string, sep byte, ids ...uint64) []byte {
	k := make([]byte, 0, len(prefix)+9*len(ids))
	k = append(k, prefix...)
	for i, id := range ids {
		if i > 0 {
			k = append(k, sep)
		}
		k = binary.BigEndian.AppendUint64(k, id)
	}
	return k
}

// LastID is the ID in the last 8 bytes of k, which has at least 8.
func LastID(k []byte) uint64 {
	return binary.BigEndian.Uint64(k[len(k)-8:])
}

// PrefixEnd is the smallest key greater than every key starting with p: the
// upper bound of a scan over p. It panics if p is only 0xff bytes, which
// no store prefix is.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	panic("pebblekv: key prefix of 0xff bytes")
}
