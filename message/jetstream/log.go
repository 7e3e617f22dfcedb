package jetstream

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/singleflight"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/message"
)

// Config configures a Log. Zero values mean the defaults.
type Config struct {
	// Stream is the stream's name; default "GH_MESSAGES".
	Stream string
	// Consumer is the name of the persisters' shared durable pull
	// consumer; default "persister".
	Consumer string
	// Replicas of the stream in a JetStream cluster; default 1.
	Replicas int
	// MaxBytes bounds the stream; the oldest records go first. Default
	// 1 GiB. It must stay well above what the back-pressure bound lets
	// wait for the persister (message.Config.MaxLag records of at most
	// about 16.5 KiB each: 825 MiB at the default 50,000), so that
	// only persisted records are ever dropped; see doc.go.
	MaxBytes int64
	// MaxAge drops records older than this; default 0, none. Setting it
	// makes a store outage longer than MaxAge lose messages; see doc.go.
	MaxAge time.Duration
	// Duplicates is the window in which a send retried with the same
	// nonce returns the first message instead of making another; default
	// 10 minutes. Beyond it the service's nonce check against the store
	// applies.
	Duplicates time.Duration
	// AckWait is how long a batch handed to a persister may stay
	// unacknowledged before it is handed out again; default 30s. A
	// persister's store writes must time out well before it.
	AckWait time.Duration
	// MaxBatch is the most records handed out at once: the consumer's
	// MaxAckPending, which also makes persisters take one batch at a
	// time, in order. Default 1000.
	MaxBatch int
	// LagRefresh is how old Lag's answer may be; default 100ms, negative
	// for never (every call asks the server).
	LagRefresh time.Duration
	// Memory keeps the stream in memory instead of files (tests only:
	// nothing would survive a restart).
	Memory bool
}

func (c *Config) defaults() {
	if c.Stream == "" {
		c.Stream = "GH_MESSAGES"
	}
	if c.Consumer == "" {
		c.Consumer = "persister"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 1 << 30
	}
	if c.Duplicates == 0 {
		c.Duplicates = 10 * time.Minute
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 1000
	}
	if c.LagRefresh == 0 {
		c.LagRefresh = 100 * time.Millisecond
	}
}

// Log is a message.Log and message.LogSource on a JetStream stream.
type Log struct {
	cfg    Config
	js     js.JetStream
	stream js.Stream
	cons   js.Consumer

	lagMu   sync.Mutex // held while refreshing lag
	lag     atomic.Uint64
	lagAt   atomic.Int64 // unix nanos of the last refresh
	lagErr  atomic.Pointer[error]
	fetchMu sync.Mutex // one Fetch at a time per Log
	floor   singleflight.Group
	// appended is the newest stream sequence this Log appended. The
	// consumer's pending count is updated by the server asynchronously
	// after a publish is acked, so right after an append it can still
	// read 0; Lag also counts from the ack floor up to appended.
	appended atomic.Uint64
}

var (
	_ message.Log       = (*Log)(nil)
	_ message.LogSource = (*Log)(nil)
)

// New creates (or updates to cfg) the stream and the persisters' durable
// consumer on nc's JetStream, and returns a Log on them. Every process
// may call it; they all share one stream and one consumer.
func New(ctx context.Context, nc *nats.Conn, cfg Config) (*Log, error) {
	const op = "message/jetstream.New"
	cfg.defaults()
	j, err := js.New(nc)
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	storage := js.FileStorage
	if cfg.Memory {
		storage = js.MemoryStorage
	}
	stream, err := j.CreateOrUpdateStream(ctx, js.StreamConfig{
		Name:        cfg.Stream,
		Description: "Guildhall message log: accepted sends, edits and deletes, until persisted",
		Subjects:    []string{bus.MessageLogSubjects},
		Retention:   js.LimitsPolicy,
		Discard:     js.DiscardOld,
		MaxBytes:    cfg.MaxBytes,
		MaxAge:      cfg.MaxAge,
		MaxMsgSize:  maxRecord,
		Storage:     storage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.Duplicates,
		AllowDirect: true,
	})
	if err != nil {
		return nil, guildhall.Wrap(op, fmt.Errorf("stream %s: %w", cfg.Stream, err))
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, js.ConsumerConfig{
		Durable:       cfg.Consumer,
		Description:   "Guildhall persisters: message log into the history store",
		AckPolicy:     js.AckAllPolicy,
		AckWait:       cfg.AckWait,
		MaxAckPending: cfg.MaxBatch,
		MaxDeliver:    -1,
		DeliverPolicy: js.DeliverAllPolicy,
		Replicas:      0,
	})
	if err != nil {
		return nil, guildhall.Wrap(op, fmt.Errorf("consumer %s: %w", cfg.Consumer, err))
	}
	return &Log{cfg: cfg, js: j, stream: stream, cons: cons}, nil
}

// maxRecord bounds one record: a message of message.MaxContent
// characters (4 bytes each at most) with room for the rest.
const maxRecord = 4*message.MaxContent + 4096

// Head implements message.Log: the last record on the channel's create
// subject.
func (l *Log) Head(ctx context.Context, channelID uint64) (message.Head, bool, error) {
	const op = "message/jetstream.Head"
	raw, err := l.stream.GetLastMsgForSubject(ctx, bus.MessageLogCreate(channelID))
	if errors.Is(err, js.ErrMsgNotFound) {
		return message.Head{}, false, nil
	}
	if err != nil {
		return message.Head{}, false, unavailable(op, err)
	}
	c, err := decode(raw.Data)
	if err != nil {
		return message.Head{}, false, guildhall.Wrap(op, err)
	}
	return message.Head{Seq: c.Message.Seq, ID: c.Message.ID, Pos: raw.Sequence}, true, nil
}

// Append implements message.Log. The dedupe key goes into Nats-Msg-Id
// hashed, so any bytes the caller puts in it are safe in a header.
func (l *Log) Append(ctx context.Context, c message.Change, expect uint64, dedupe string) (uint64, message.Change, bool, error) {
	const op = "message/jetstream.Append"
	data, err := encode(c)
	if err != nil {
		return 0, message.Change{}, false, guildhall.Wrap(op, err)
	}
	msg := nats.NewMsg(bus.MessageLogChange(c.Message.ChannelID))
	msg.Data = data
	var opts []js.PublishOpt
	if c.Kind == message.ChangeCreate {
		msg.Subject = bus.MessageLogCreate(c.Message.ChannelID)
		opts = append(opts, js.WithExpectLastSequencePerSubject(expect))
	}
	if dedupe != "" {
		sum := sha256.Sum256([]byte(dedupe))
		opts = append(opts, js.WithMsgID(base64.RawURLEncoding.EncodeToString(sum[:])))
	}
	ack, err := l.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		var apiErr *js.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == js.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == js.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, message.Change{}, false, fmt.Errorf("%s: %w", op, message.ErrStaleHead)
		}
		return 0, message.Change{}, false, unavailable(op, err)
	}
	if !ack.Duplicate {
		for {
			a := l.appended.Load()
			if ack.Sequence <= a || l.appended.CompareAndSwap(a, ack.Sequence) {
				break
			}
		}
		return ack.Sequence, c, false, nil
	}
	raw, err := l.stream.GetMsg(ctx, ack.Sequence)
	if errors.Is(err, js.ErrMsgNotFound) {
		// Trimmed, so persisted: the caller finds it in the store.
		return ack.Sequence, message.Change{}, true, guildhall.E(op, guildhall.Unavailable, "the original message is being persisted, retry")
	}
	if err != nil {
		return 0, message.Change{}, false, unavailable(op, err)
	}
	orig, err := decode(raw.Data)
	if err != nil {
		return 0, message.Change{}, false, guildhall.Wrap(op, err)
	}
	return ack.Sequence, orig, true, nil
}

// lagOf is the records not yet persisted as the consumer's info tells,
// and at least those between its ack floor and this Log's newest append.
func (l *Log) lagOf(info *js.ConsumerInfo) uint64 {
	lag := info.NumPending + uint64(info.NumAckPending)
	if a := l.appended.Load(); a > info.AckFloor.Stream {
		lag = max(lag, a-info.AckFloor.Stream)
	}
	return lag
}

// Lag implements message.Log: the consumer's pending and unacknowledged
// records, refreshed at most every LagRefresh (one caller refreshes, the
// others take the last answer meanwhile).
func (l *Log) Lag(ctx context.Context) (uint64, error) {
	const op = "message/jetstream.Lag"
	if time.Since(time.Unix(0, l.lagAt.Load())) < l.cfg.LagRefresh {
		return l.lagAnswer()
	}
	if l.cfg.LagRefresh < 0 {
		info, err := l.cons.Info(ctx)
		if err != nil {
			return 0, unavailable(op, err)
		}
		return l.lagOf(info), nil
	}
	if !l.lagMu.TryLock() {
		if l.lagAt.Load() != 0 {
			return l.lagAnswer()
		}
		l.lagMu.Lock() // the very first answer: wait for it
	}
	defer l.lagMu.Unlock()
	if time.Since(time.Unix(0, l.lagAt.Load())) < l.cfg.LagRefresh {
		return l.lagAnswer()
	}
	info, err := l.cons.Info(ctx)
	if err != nil {
		err = unavailable(op, err)
		l.lagErr.Store(&err)
	} else {
		l.lag.Store(l.lagOf(info))
		l.lagErr.Store(nil)
	}
	l.lagAt.Store(time.Now().UnixNano())
	return l.lagAnswer()
}

// Newest implements message.Log: the last record on either subject of
// the channel (a direct get of the last message on a wildcard subject).
func (l *Log) Newest(ctx context.Context, channelID uint64) (uint64, error) {
	raw, err := l.stream.GetLastMsgForSubject(ctx, bus.MessageLogChannel(channelID))
	if errors.Is(err, js.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable("message/jetstream.Newest", err)
	}
	return raw.Sequence, nil
}

// Persisted implements message.Log: the consumer's ack floor. Callers at
// the same moment share one request (every history read that misses the
// cache asks); one that joins a request already in flight may get a floor
// a moment old, which is only lower (the floor never goes back), so a
// caller waiting for a position just asks again.
func (l *Log) Persisted(ctx context.Context) (uint64, error) {
	v, err, _ := l.floor.Do("floor", func() (any, error) {
		info, err := l.cons.Info(ctx)
		if err != nil {
			return uint64(0), err
		}
		return info.AckFloor.Stream, nil
	})
	if err != nil {
		return 0, unavailable("message/jetstream.Persisted", err)
	}
	return v.(uint64), nil
}

func (l *Log) lagAnswer() (uint64, error) {
	if p := l.lagErr.Load(); p != nil {
		return 0, *p
	}
	return l.lag.Load(), nil
}

// Next implements message.LogSource with a Fetch on the durable consumer.
func (l *Log) Next(ctx context.Context, limit int, wait time.Duration) (message.Batch, error) {
	const op = "message/jetstream.Next"
	limit = min(max(limit, 1), l.cfg.MaxBatch)
	l.fetchMu.Lock()
	defer l.fetchMu.Unlock()
	// The server ends the pull after wait (FetchMaxWait, not a client
	// deadline): records it sent before are all received, whereas a
	// client that stopped reading first would leave them delivered but
	// unread until AckWait.
	if err := ctx.Err(); err != nil {
		return message.Batch{}, err
	}
	mb, err := l.cons.Fetch(limit, js.FetchMaxWait(max(wait, time.Millisecond)))
	if err != nil {
		if ctx.Err() != nil {
			return message.Batch{}, ctx.Err()
		}
		return message.Batch{}, unavailable(op, err)
	}
	var msgs []js.Msg
	for msg := range mb.Messages() {
		msgs = append(msgs, msg)
	}
	if err := mb.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, js.ErrNoHeartbeat) && len(msgs) == 0 {
		if ctx.Err() != nil {
			return message.Batch{}, ctx.Err()
		}
		return message.Batch{}, unavailable(op, err)
	}
	if len(msgs) == 0 {
		return message.Batch{}, nil
	}
	msgs, err = l.oldest(ctx, msgs)
	if err != nil {
		return message.Batch{}, unavailable(op, err)
	}
	if len(msgs) == 0 {
		return message.Batch{}, nil
	}
	var b message.Batch
	for _, msg := range msgs {
		c, err := decode(msg.Data())
		if err != nil {
			// A record this code cannot read was not written by it; it
			// is skipped (acknowledged with the batch), not retried
			// forever.
			continue
		}
		b.Changes = append(b.Changes, c)
	}
	last := msgs[len(msgs)-1]
	if md, err := last.Metadata(); err == nil {
		b.Pending = md.NumPending
	}
	b.Ack = func(ctx context.Context) error {
		return unavailable("message/jetstream.Ack", last.DoubleAck(ctx))
	}
	return b, nil
}

// oldest keeps, of the records just fetched, the run that directly
// follows the consumer's ack floor, in stream order, and hands the rest
// back (nak, redelivered shortly). Only such a run may be stored, and
// acknowledging its last record (AckAll) then acknowledges nothing that
// is not stored. Without this, a persister could be handed newer records
// while a dead one's batch waits for redelivery (or redelivered records
// out of order), store them first (an edit before its create) and
// acknowledge records it never stored.
func (l *Log) oldest(ctx context.Context, msgs []js.Msg) ([]js.Msg, error) {
	seqs := make(map[js.Msg]uint64, len(msgs))
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			l.nak(msgs)
			return nil, err
		}
		seqs[m] = md.Sequence.Stream
	}
	slices.SortFunc(msgs, func(a, b js.Msg) int { return cmpSeq(seqs[a], seqs[b]) })
	info, err := l.cons.Info(ctx)
	if err != nil {
		l.nak(msgs)
		return nil, err
	}
	n := 0
	if info.NumAckPending == len(msgs) {
		n = len(msgs) // nothing else is out, so nothing older is unacknowledged
	} else {
		for n < len(msgs) && seqs[msgs[n]] == info.AckFloor.Stream+1+uint64(n) {
			n++
		}
	}
	l.nak(msgs[n:])
	return msgs[:n], nil
}

// nak hands records back, to be delivered again shortly.
func (l *Log) nak(msgs []js.Msg) {
	for _, m := range msgs {
		_ = m.NakWithDelay(l.cfg.AckWait / 20)
	}
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// unavailable wraps a JetStream error as Unavailable: the caller retries.
func unavailable(op string, err error) error {
	if err == nil {
		return nil
	}
	var ge *guildhall.Error
	if errors.As(err, &ge) {
		return guildhall.Wrap(op, err)
	}
	return &guildhall.Error{Op: op, Kind: guildhall.Unavailable, Msg: "message log unavailable, retry", Err: err}
}
