package pebble

import (
	"context"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/internal/pebblekv"
	"github.com/guildhall/guildhall/message"
)

// pReadState holds read positions: g/rs/<user>/<channel> -> record
// (version 1, seq, message ID as uvarints). One user's positions are one
// contiguous range, in channel ID order.
const pReadState = "g/rs/"

func readStateKey(userID, channelID uint64) []byte { return key(pReadState, userID, channelID) }
func readStatePrefix(userID uint64) []byte         { return append(key(pReadState, userID), '/') }

// ReadStates is message.ReadStateStore on Pebble, sharing the database
// (and the "g/" prefix) with Store. A raise reads the stored position and
// writes the new one under a per-user lock (users hash onto 64 locks), in
// one synced batch; like Store, it is for one process.
type ReadStates struct {
	db    *pebbledb.DB
	locks [64]sync.Mutex
}

var _ message.ReadStateStore = (*ReadStates)(nil)

// NewReadStates returns the read-state store on db. The caller opens and
// closes db.
func NewReadStates(db *pebbledb.DB) *ReadStates { return &ReadStates{db: db} }

// PutReadPosition implements message.ReadStateStore.
func (s *ReadStates) PutReadPosition(_ context.Context, userID uint64, p message.ReadPosition) error {
	const op = "message/pebble.PutReadPosition"
	if err := message.CheckReadPosition(userID, p); err != nil {
		return guildhall.Wrap(op, err)
	}
	mu := &s.locks[(userID*0x9e3779b97f4a7c15)>>58]
	mu.Lock()
	defer mu.Unlock()
	k := readStateKey(userID, p.ChannelID)
	cur, ok, err := pebblekv.Get(s.db, k, func(v []byte) (message.ReadPosition, error) { return decodeReadPosition(p.ChannelID, v) })
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if ok && cur.Seq >= p.Seq {
		return nil
	}
	e := pebblekv.NewEncoderSize(recordV1, 21)
	e.Uint(p.Seq)
	e.Uint(p.ID)
	return guildhall.Wrap(op, s.db.Set(k, e.Record(), pebbledb.Sync))
}

// ReadPositions implements message.ReadStateStore.
func (s *ReadStates) ReadPositions(_ context.Context, userID uint64) ([]message.ReadPosition, error) {
	const op = "message/pebble.ReadPositions"
	var out []message.ReadPosition
	err := pebblekv.Scan(s.db, readStatePrefix(userID), nil, func(k, v []byte) (bool, error) {
		p, err := decodeReadPosition(pebblekv.LastID(k), v)
		if err != nil {
			return false, err
		}
		out = append(out, p)
		return true, nil
	})
	return out, guildhall.Wrap(op, err)
}

func decodeReadPosition(channelID uint64, v []byte) (message.ReadPosition, error) {
	d := pebblekv.NewDecoder(v, recordV1)
	p := message.ReadPosition{ChannelID: channelID, Seq: d.Uint(), ID: d.Uint()}
	return p, d.Done()
}
