package pebble

import (
	"github.com/guildhall/guildhall/internal/pebblekv"
	"github.com/guildhall/guildhall/message"
)

// Record format versions, the first byte of every record: recordV1 for
// every record type's first format; messages are written as recordV2
// (with mentions), and version 1 messages are still read.
const (
	recordV1 = 1
	recordV2 = 2
)

// Key families; see doc.go for what each holds.
const (
	pMsg   = "g/msg/"
	pSeq   = "g/seq/"
	pLast  = "g/last/"
	pNonce = "g/nonce/"
)

// key is prefix followed by ids, each 8-byte big-endian, separated by '/'.
func key(prefix string, ids ...uint64) []byte { return pebblekv.KeySep(prefix, '/', ids...) }

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

func encodeMessage(m message.Message) []byte {
	e := pebblekv.NewEncoderSize(recordV2, 64+len(m.Content)+len(m.Nonce)+10*(len(m.Mentions.Users)+len(m.Mentions.Roles)))
	e.Uint(m.ServerID)
	e.Uint(m.AuthorID)
	e.Str(m.Content)
	e.Uint(m.Seq)
	e.Str(m.Nonce)
	e.Time(m.CreatedAt)
	e.Time(m.EditedAt)
	// Version 2: the mentions.
	e.Bool(m.Mentions.Everyone)
	e.Uint(uint64(len(m.Mentions.Users)))
	for _, id := range m.Mentions.Users {
		e.Uint(id)
	}
	e.Uint(uint64(len(m.Mentions.Roles)))
	for _, id := range m.Mentions.Roles {
		e.Uint(id)
	}
	return e.Record()
}

// decodeMessage decodes the record of message id in channelID; a corrupt
// record gives the zero Message. What it returns never aliases v, which
// Pebble may reuse.
func decodeMessage(channelID, id uint64, v []byte) (message.Message, error) {
	d := pebblekv.NewDecoder(v, recordV2)
	m := message.Message{ID: id, ChannelID: channelID}
	m.ServerID = d.Uint()
	m.AuthorID = d.Uint()
	m.Content = d.Str()
	m.Seq = d.Uint()
	m.Nonce = d.Str()
	m.CreatedAt = d.Time()
	m.EditedAt = d.Time()
	if d.Version() >= 2 {
		m.Mentions.Everyone = d.Bool()
		m.Mentions.Users = decodeIDs(d)
		m.Mentions.Roles = decodeIDs(d)
	}
	if err := d.Done(); err != nil {
		return message.Message{}, err
	}
	return m, nil
}

// decodeIDs reads a count and that many uvarints; a count larger than
// what is left of the record fails the decoder.
func decodeIDs(d *pebblekv.Decoder) []uint64 {
	n := d.Uint()
	if n == 0 {
		return nil
	}
	if n > uint64(d.Len()) { // each takes at least a byte
		d.Fail()
		return nil
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = d.Uint()
	}
	return ids
}
