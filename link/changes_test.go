package link

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/guildhall/guildhall/message"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// TestResumeAfterNodeDeathReplaysChanges: edits and deletions of
// messages the client had, made while its node was dead, come after the
// history on a resume elsewhere; those in channels it may no longer see
// do not.
func TestResumeAfterNodeDeathReplaysChanges(t *testing.T) {
	hist := &fakeHistory{}
	h := mustHarness(t, Config{SmallServer: -1})
	store := h.mustSessions(t)
	mlog, err := messagejs.New(t.Context(), h.nc, messagejs.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{History: hist, Sessions: store, Changes: mlog, SmallServer: -1, CheckpointEvery: 10 * time.Millisecond}
	a := h.addNode(t, cfg)
	b := h.addNode(t, cfg)
	c := a.dial(t)
	ready := c.identify()
	c.mustSubscribe(1, 2)
	for id := uint64(1); id <= 3; id++ {
		hist.add(1, id)
	}
	hist.add(2, 10)
	a.deliver(t, h.nc, messageEvent(1, 1, ""), messageEvent(1, 2, ""), messageEvent(1, 3, ""), messageEvent(2, 10, ""))
	readEvents(t, c, 1, messageEvent(1, 1, ""), messageEvent(1, 2, ""), messageEvent(1, 3, ""), messageEvent(2, 10, ""))
	c.write(&pb.Frame{Body: &pb.Frame_Heartbeat{Heartbeat: &pb.Heartbeat{LastSeq: 4}}})
	if f := c.read(); f.GetHeartbeatAck() == nil {
		t.Fatal(f)
	}
	checkFor(t, wait, time.Millisecond, func() error {
		data, err := store.Get(context.Background(), ready.SessionId)
		if err != nil {
			return err
		}
		var ho pb.SessionHandover
		if err := proto.Unmarshal(data, &ho); err != nil {
			return err
		}
		if ho.State.Seq != 4 || len(ho.State.Channels) != 2 {
			return fmt.Errorf("checkpoint %v", ho.State)
		}
		return nil
	})
	// A dies; while the client is away, 2 is edited, 1 deleted, 4 sent
	// and edited, and 10 (in a channel then hidden) edited.
	a.nc.Close()
	c.conn.CloseNow()
	ctx := t.Context()
	msg := func(ch, id uint64, content string) message.Message {
		return message.Message{ID: id, ChannelID: ch, ServerID: serverID, AuthorID: bobID, Content: content, Seq: id,
			CreatedAt: time.Date(2030, 1, 1, 0, 0, 0, int(id), time.UTC), EditedAt: time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)}
	}
	hist.add(1, 4)
	for _, ch := range []message.Change{
		{Kind: message.ChangeEdit, Message: msg(1, 2, "edited")},
		{Kind: message.ChangeDelete, Message: message.Message{ID: 1, ChannelID: 1, ServerID: serverID, Seq: 1}},
		{Kind: message.ChangeEdit, Message: msg(1, 4, "new, edited")},
		{Kind: message.ChangeEdit, Message: msg(2, 10, "hidden")},
	} {
		if _, _, _, err := mlog.Append(ctx, ch, 0, ""); err != nil {
			t.Fatal(err)
		}
	}
	h.dir.mu.Lock()
	h.dir.deny[2] = true
	h.dir.mu.Unlock()

	replayed, end := b.dial(t).resumeWith(ready.SessionId, 4, nil)
	if end.GetResumed() == nil {
		t.Fatalf("resume ended with %v", end)
	}
	if len(replayed) != 3 {
		t.Fatalf("replayed %v, want create 4, update 2, delete 1", replayed)
	}
	for i, f := range replayed {
		if f.Seq != 5+uint64(i) {
			t.Fatalf("frame %d has seq %d (%v)", i, f.Seq, replayed)
		}
	}
	if m := replayed[0].GetEvent().GetMessageCreate(); m.GetId() != 4 {
		t.Fatalf("first %v, want create 4", replayed[0])
	}
	if m := replayed[1].GetEvent().GetMessageUpdate(); m.GetId() != 2 || m.GetContent() != "edited" || m.GetEditedAt() == nil || replayed[1].GetEvent().GetChannelId() != 1 {
		t.Fatalf("second %v, want update of 2", replayed[1])
	}
	if d := replayed[2].GetEvent().GetMessageDelete(); d.GetId() != 1 || d.GetChannelId() != 1 || replayed[2].GetEvent().GetChannelId() != 1 {
		t.Fatalf("third %v, want delete of 1", replayed[2])
	}
}
