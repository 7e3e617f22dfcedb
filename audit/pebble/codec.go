package pebble

import (
	"encoding/binary"
	"time"

	"github.com/guildhall/guildhall/audit"
	"github.com/guildhall/guildhall/internal/pebblekv"
)

// Key families; see doc.go for what each holds.
const (
	pEntry = "a/e/"
	pTime  = "a/t/"
)

// recordV1 is the first byte of every record this package writes.
const recordV1 = 1

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
		return 0, 0, pebblekv.ErrCorrupt
	}
	return binary.BigEndian.Uint64(k[len(k)-16:]), binary.BigEndian.Uint64(k[len(k)-8:]), nil
}

// encodeEntry is the record of e; actor and action come first so that a
// filtered List can skip an entry without decoding the rest.
func encodeEntry(e audit.Entry) []byte {
	enc := pebblekv.NewEncoder(recordV1)
	enc.Uint(e.ActorID)
	enc.Str(string(e.Action))
	enc.Uint(e.TargetID)
	enc.Time(e.CreatedAt)
	enc.Str(e.Reason)
	enc.Uint(uint64(len(e.Changes)))
	for _, c := range e.Changes {
		enc.Str(c.Key)
		enc.Str(c.Old)
		enc.Str(c.New)
	}
	return enc.Record()
}

// decodeEntry decodes the record v of entry id in serverID. It returns
// ok false, and no error, if the entry does not match q's filters.
func decodeEntry(serverID, id uint64, v []byte, q audit.Query) (e audit.Entry, ok bool, err error) {
	d := pebblekv.NewDecoder(v, recordV1)
	e = audit.Entry{ID: id, ServerID: serverID, ActorID: d.Uint()}
	var buf [32]byte // room for every action, so a skipped entry allocates nothing
	action := d.AppendBytes(buf[:0])
	if err := d.Err(); err != nil {
		return audit.Entry{}, false, err
	}
	if (q.ActorID != 0 && e.ActorID != q.ActorID) || (q.Action != "" && string(action) != string(q.Action)) {
		return audit.Entry{}, false, nil
	}
	e.Action = audit.Action(action)
	e.TargetID = d.Uint()
	e.CreatedAt = d.Time()
	e.Reason = d.Str()
	n := d.Uint()
	// Each change takes at least 3 bytes, which bounds a corrupt count.
	if n > uint64(d.Len())/3 {
		d.Fail()
	}
	if n > 0 && d.Err() == nil {
		e.Changes = make([]audit.Change, n)
		for i := range e.Changes {
			e.Changes[i] = audit.Change{Key: d.Str(), Old: d.Str(), New: d.Str()}
		}
	}
	if err := d.Done(); err != nil {
		return audit.Entry{}, false, err
	}
	return e, true, nil
}
