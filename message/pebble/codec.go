package pebble

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/guildhall/guildhall/message"
)

// recordV1 is the first byte of every record this package writes.
const recordV1 = 1

var errCorrupt = errors.New("corrupt record")

var (
	pMsg   = []byte("g/msg/")
	pSeq   = []byte("g/seq/")
	pLast  = []byte("g/last/")
	pNonce = []byte("g/nonce/")
)

// key is prefix followed by ids, each 8-byte big-endian, separated by '/'.
func key(prefix []byte, ids ...uint64) []byte {
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

func msgKey(channelID, id uint64) []byte   { return key(pMsg, channelID, id) }
func seqKey(channelID, seq uint64) []byte  { return key(pSeq, channelID, seq) }
func lastKey(channelID uint64) []byte      { return key(pLast, channelID) }
func historyLower(channelID uint64) []byte { return append(key(pMsg, channelID), '/') }

// historyUpper is just past every message key of the channel.
func historyUpper(channelID uint64) []byte { return append(key(pMsg, channelID), '/'+1) }

func nonceKey(channelID, authorID uint64, nonce string) []byte {
	k := append(key(pNonce, channelID, authorID), '/')
	return append(k, nonce...)
}

// msgID is the message ID at the end of a g/msg/ key.
func msgID(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(k)-8:]) }

func encodeID(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func decodeID(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(v), nil
}

func encodeMessage(m message.Message) []byte {
	b := make([]byte, 0, 64+len(m.Content)+len(m.Nonce))
	b = append(b, recordV1)
	b = binary.AppendUvarint(b, m.ServerID)
	b = binary.AppendUvarint(b, m.AuthorID)
	b = appendString(b, m.Content)
	b = binary.AppendUvarint(b, m.Seq)
	b = appendString(b, m.Nonce)
	b = appendTime(b, m.CreatedAt)
	b = appendTime(b, m.EditedAt)
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// decodeMessage decodes the record of message id in channelID. What it
// returns never aliases v, which Pebble may reuse.
func decodeMessage(channelID, id uint64, v []byte) (message.Message, error) {
	if len(v) == 0 || v[0] != recordV1 {
		return message.Message{}, errCorrupt
	}
	d := decoder{b: v[1:]}
	m := message.Message{ID: id, ChannelID: channelID}
	m.ServerID = d.uint()
	m.AuthorID = d.uint()
	m.Content = d.str()
	m.Seq = d.uint()
	m.Nonce = d.str()
	m.CreatedAt = d.time()
	m.EditedAt = d.time()
	if d.bad || len(d.b) != 0 {
		return message.Message{}, errCorrupt
	}
	return m, nil
}

// decoder reads record fields; after the first malformed one, bad is set
// and every read returns zero.
type decoder struct {
	b   []byte
	bad bool
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

func (d *decoder) time() time.Time {
	sec, nsec := d.int(), d.uint()
	if nsec >= uint64(time.Second) {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) fail() { d.bad, d.b = true, nil }
