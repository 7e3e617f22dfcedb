package pebble

import (
	"math"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/guildhall/guildhall/member"
)

var at = time.Date(2026, 3, 1, 12, 0, 0, 5_000_000, time.UTC)

// Version 1 records exactly as the build before version 2 wrote them.
const (
	v1Channel = "\x01\xe8\a\ageneral\x00\x03\xe9\a\x80\xa9\xa1\x9a\r\xc0\x96\xb1\x02"
	v1Member  = "\x01\x05Alice\x80\xa9\xa1\x9a\r\xc0\x96\xb1\x02"
)

func TestVersion1Records(t *testing.T) {
	c, err := decodeChannel(7)([]byte(v1Channel))
	want := member.Channel{ID: 7, ServerID: 1000, Name: "general", Type: member.ChannelText, Position: -2, ParentID: 1001, CreatedAt: at}
	if err != nil || c != want {
		t.Errorf("decodeChannel(v1) = %+v, %v\nwant %+v", c, err, want)
	}
	m, err := decodeMember(1000, 101)([]byte(v1Member))
	wantM := member.Member{ServerID: 1000, UserID: 101, Username: "Alice", JoinedAt: at}
	if err != nil || m != wantM {
		t.Errorf("decodeMember(v1) = %+v, %v\nwant %+v", m, err, wantM)
	}
	// Version 2 is version 1 and one more field.
	if v := encodeChannel(want); v[0] != recordV2 || string(v[1:len(v)-1]) != v1Channel[1:] || v[len(v)-1] != 0 {
		t.Errorf("encodeChannel = %q, want v2 of %q and synced 0", v, v1Channel)
	}
	if v := encodeMember(wantM); v[0] != recordV2 || string(v[1:len(v)-1]) != v1Member[1:] || v[len(v)-1] != 0 {
		t.Errorf("encodeMember = %q, want v2 of %q and an empty nick", v, v1Member)
	}
}

func TestUnknownVersions(t *testing.T) {
	for name, decode := range map[string]func([]byte) error{
		"channel": func(v []byte) error { _, err := decodeChannel(1)(v); return err },
		"member":  func(v []byte) error { _, err := decodeMember(1, 2)(v); return err },
		"ban":     func(v []byte) error { _, err := decodeBan(1, 2)(v); return err },
		"user":    func(v []byte) error { _, err := decodeUser(1)(v); return err },
	} {
		for _, version := range []byte{0, 3, 0xff} {
			v := append([]byte{version}, v1Member[1:]...)
			if err := decode(v); err == nil {
				t.Errorf("decode %s of version %d: no error", name, version)
			}
		}
	}
	// Types that have only version 1 refuse version 2.
	ban := encodeBan(member.Ban{ServerID: 1, UserID: 2, Username: "x", CreatedAt: at})
	ban[0] = recordV2
	if _, err := decodeBan(1, 2)(ban); err == nil {
		t.Error("decodeBan(version 2): no error")
	}
	// A synced flag other than 0 or 1 is corrupt.
	c := encodeChannel(member.Channel{ID: 1, Synced: true, CreatedAt: at})
	c[len(c)-1] = 2
	if _, err := decodeChannel(1)(c); err == nil {
		t.Error("decodeChannel(synced 2): no error")
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, c := range []member.Channel{
		{ID: 1, CreatedAt: time.Unix(0, 0).UTC()},
		{ID: 2, ServerID: 3, Name: "general", Type: member.ChannelCategory, Position: -4, ParentID: 5, Synced: true, CreatedAt: at},
		{ID: math.MaxUint64, ServerID: math.MaxUint64, Name: "\x00é", Position: math.MinInt, ParentID: math.MaxUint64, Synced: true, CreatedAt: at},
	} {
		roundTrip(t, "channel", c, encodeChannel(c), decodeChannel(c.ID))
	}
	for _, m := range []member.Member{
		{ServerID: 1, UserID: 2, Username: "a", JoinedAt: at},
		{ServerID: 1, UserID: 2, Username: "Alice", Nick: "Queen 👑 \x00", JoinedAt: at},
	} {
		roundTrip(t, "member", m, encodeMember(m), decodeMember(m.ServerID, m.UserID))
	}
	for _, b := range []member.Ban{
		{ServerID: 1, UserID: 2, CreatedAt: at},
		{ServerID: 1, UserID: 2, Username: "spammer", ActorID: math.MaxUint64, Reason: "spam\nand more", CreatedAt: at},
	} {
		roundTrip(t, "ban", b, encodeBan(b), decodeBan(b.ServerID, b.UserID))
	}
}

// roundTrip checks that v decodes to want and that every cut of v, and v
// with a trailing byte, is corrupt.
func roundTrip[T comparable](t *testing.T, what string, want T, v []byte, decode func([]byte) (T, error)) {
	t.Helper()
	got, err := decode(v)
	if err != nil || got != want {
		t.Errorf("%s round trip = %+v, %v\nwant %+v", what, got, err, want)
	}
	for n := range len(v) {
		if _, err := decode(v[:n]); err == nil {
			t.Errorf("%s %+v cut to %d bytes: no error", what, want, n)
		}
	}
	if _, err := decode(append(v, 0)); err == nil {
		t.Errorf("%s %+v with a trailing byte: no error", what, want)
	}
}

// An existing data dir holds only version 1 channels and members; the new
// build reads them, searches them and rewrites them as version 2.
func TestOldDataDir(t *testing.T) {
	db, err := pebbledb.Open("", &pebbledb.Options{FS: vfs.NewMem(), Logger: noInfo{pebbledb.DefaultLogger}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	s := New(db)
	if err := s.CreateUser(ctx, member.User{ID: 100, Username: "owner", CreatedAt: at}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateServer(ctx, member.Server{ID: 1000, OwnerID: 100, Name: "old", CreatedAt: at}, nil, member.Member{ServerID: 1000, UserID: 100, Username: "owner", JoinedAt: at}); err != nil {
		t.Fatal(err)
	}
	// What the old build wrote for channel 7 and member 101.
	b := db.NewBatch()
	set(b, key(pChannel, 7), []byte(v1Channel))
	set(b, key(pServerChan, 1000, 7), []byte(v1Channel))
	set(b, key(pMember, 1000, 101), []byte(v1Member))
	set(b, memberNameKey(1000, "Alice", 101), []byte(v1Member))
	set(b, key(pUserServer, 101, 1000), nil)
	set(b, key(pMemberCount, 1000), encodeCount(2))
	if err := b.Commit(pebbledb.Sync); err != nil {
		t.Fatal(err)
	}

	if c, err := s.Channel(ctx, 7); err != nil || c.Name != "general" || c.Synced {
		t.Errorf("Channel(v1) = %+v, %v", c, err)
	}
	if cs, err := s.Channels(ctx, 1000); err != nil || len(cs) != 1 || cs[0].ParentID != 1001 || cs[0].Synced {
		t.Errorf("Channels(v1) = %+v, %v", cs, err)
	}
	if ms, err := s.Members(ctx, 1000, member.MemberQuery{Prefix: "ali", Limit: 10}); err != nil || len(ms) != 1 || ms[0].Username != "Alice" || ms[0].Nick != "" {
		t.Errorf("Members(ali) over v1 = %+v, %v", ms, err)
	}

	c, _ := s.Channel(ctx, 7)
	c.Synced = true
	if err := s.UpdateChannel(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMember(ctx, member.Member{ServerID: 1000, UserID: 101, Nick: "Al"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range [][]byte{key(pChannel, 7), key(pServerChan, 1000, 7), key(pMember, 1000, 101), memberNameKey(1000, "Alice", 101)} {
		v, closer, err := db.Get(k)
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		if v[0] != recordV2 {
			t.Errorf("record %q after its update is version %d, want 2", k, v[0])
		}
		closer.Close()
	}
	if ms, err := s.Members(ctx, 1000, member.MemberQuery{Prefix: "ali", Limit: 10}); err != nil || len(ms) != 1 || ms[0].Nick != "Al" {
		t.Errorf("Members(ali) after UpdateMember = %+v, %v", ms, err)
	}

	// A ban removes a membership written by the old build as well.
	if err := s.Ban(ctx, member.Ban{ServerID: 1000, UserID: 101, Username: "Alice", ActorID: 100, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.MemberCount(ctx, 1000); err != nil || n != 1 {
		t.Errorf("MemberCount after ban = %d, %v", n, err)
	}
	if ms, err := s.Members(ctx, 1000, member.MemberQuery{Prefix: "ali", Limit: 10}); err != nil || len(ms) != 0 {
		t.Errorf("Members(ali) after ban = %+v, %v", ms, err)
	}
}

// noInfo drops Pebble's informational messages (WAL recovery, ...).
type noInfo struct{ pebbledb.Logger }

func (noInfo) Infof(string, ...any) {}

// The decoders read what is on disk; any bytes give a record or an error,
// never a panic, and a record that decodes encodes back to itself.

func FuzzDecodeChannel(f *testing.F) {
	f.Add([]byte(v1Channel))
	f.Add(encodeChannel(member.Channel{ID: 1, ServerID: 2, Name: "x", Synced: true, CreatedAt: at}))
	f.Add([]byte{recordV2})
	f.Fuzz(func(t *testing.T, v []byte) {
		c, err := decodeChannel(1)(v)
		if err != nil {
			return
		}
		if again, err := decodeChannel(1)(encodeChannel(c)); err != nil || again != c {
			t.Errorf("round trip of %+v = %+v, %v", c, again, err)
		}
	})
}

func FuzzDecodeMember(f *testing.F) {
	f.Add([]byte(v1Member))
	f.Add(encodeMember(member.Member{ServerID: 1, UserID: 2, Username: "x", Nick: "y", JoinedAt: at}))
	f.Add([]byte{recordV2})
	f.Fuzz(func(t *testing.T, v []byte) {
		m, err := decodeMember(1, 2)(v)
		if err != nil {
			return
		}
		if again, err := decodeMember(1, 2)(encodeMember(m)); err != nil || again != m {
			t.Errorf("round trip of %+v = %+v, %v", m, again, err)
		}
	})
}

func FuzzDecodeBan(f *testing.F) {
	f.Add(encodeBan(member.Ban{ServerID: 1, UserID: 2, Username: "x", ActorID: 3, Reason: "r", CreatedAt: at}))
	f.Add([]byte{recordV1})
	f.Fuzz(func(t *testing.T, v []byte) {
		b, err := decodeBan(1, 2)(v)
		if err != nil {
			return
		}
		if again, err := decodeBan(1, 2)(encodeBan(b)); err != nil || again != b {
			t.Errorf("round trip of %+v = %+v, %v", b, again, err)
		}
	})
}
