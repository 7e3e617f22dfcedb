package redis_test

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/guildhall/guildhall/internal/redisdb/redistest"
	"github.com/guildhall/guildhall/message"
	msgredis "github.com/guildhall/guildhall/message/redis"
)

// cmdCounter is a go-redis hook counting the commands the client sends.
type cmdCounter struct{ n atomic.Int64 }

func (c *cmdCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (c *cmdCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *cmdCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// redisServerCalls sums the calls of every command in INFO commandstats (the
// commands a script runs count too), less INFO's own.
func redisServerCalls(tb testing.TB, rc *goredis.Client) int64 {
	tb.Helper()
	s, err := rc.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var total int64
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":calls=")
		if !ok || name == "cmdstat_info" {
			continue
		}
		n, err := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		if err != nil {
			tb.Fatalf("commandstats line %q", sc.Text())
		}
		total += n
	}
	return total
}

// BenchmarkAccepted measures what Counters.Accepted costs Redis per
// message in channels whose servers have 10, 1,000 and 1,000,000 members.
// The members are users with a read position in the channel (written
// before the timer starts, as the members' acks would have), so Redis
// holds their state; Accepted never reads or writes it. Reported:
// cmds/op, the commands the client sends; calls/op, the commands Redis
// executes (INFO commandstats, counting those inside the script; exact
// only on a Redis nobody else uses during the run, see docs/benchmarks.md).
func BenchmarkAccepted(b *testing.B) {
	rc, prefix := redistest.MustClient(b)
	b.Cleanup(func() { unlinkPrefix(b, rc, prefix) }) // before MustClient's key-by-key cleanup
	for _, members := range []int{10, 1_000, 1_000_000} {
		ch := uint64(members) // a channel per server size
		populateMembers(b, rc, prefix, ch, members)
		for _, kind := range []struct {
			name     string
			mentions message.Mentions
		}{
			{"plain", message.Mentions{}},
			{"everyone", message.Mentions{Everyone: true}},
			{"role+3users", message.Mentions{Roles: []uint64{77}, Users: []uint64{1, 2, 3}}},
		} {
			b.Run(fmt.Sprintf("members=%d/%s", members, kind.name), func(b *testing.B) {
				var hook cmdCounter
				opt := *rc.Options()
				client := goredis.NewClient(&opt)
				defer client.Close()
				client.AddHook(&hook)
				c := msgredis.NewCounters(client, msgredis.CountersConfig{Prefix: prefix})
				ctx := context.Background()
				seq0 := uint64(1_000_000 * len(kind.name)) // distinct seqs per kind
				before := redisServerCalls(b, rc)
				b.ResetTimer()
				for i := range b.N {
					seq := seq0 + uint64(i) + 1
					m := message.Message{ID: seq << 22, ChannelID: ch, AuthorID: 5_000_000, Seq: seq, Mentions: kind.mentions}
					if err := c.Accepted(ctx, m); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				calls := redisServerCalls(b, rc) - before
				b.ReportMetric(float64(hook.n.Load())/float64(b.N), "cmds/op")
				b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
				// The members' state is as it was: read one back.
				st, err := c.Load(ctx, uint64(members), []message.CounterQuery{{ChannelID: ch}})
				if err != nil {
					b.Fatal(err)
				}
				if !st[0].ReadKnown || st[0].Read.Seq != 1 || st[0].Head < seq0+uint64(b.N) {
					b.Fatalf("member %d after the run: %+v", members, st[0])
				}
			})
		}
	}
}

// populateMembers gives users 1..n a read position (seq 1) in channel ch, the way
// their acks would, pipelined 10,000 at a time.
func populateMembers(b *testing.B, rc *goredis.Client, prefix string, ch uint64, n int) {
	b.Helper()
	ctx := context.Background()
	field := strconv.FormatUint(ch, 10)
	for start := 1; start <= n; start += 10_000 {
		p := rc.Pipeline()
		for u := start; u < start+10_000 && u <= n; u++ {
			p.HSet(ctx, prefix+"ur:"+strconv.Itoa(u), field, "1:4194304", "*", "1")
		}
		if _, err := p.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// unlinkPrefix drops every key under prefix in batches.
func unlinkPrefix(b *testing.B, rc *goredis.Client, prefix string) {
	ctx := context.Background()
	var cursor uint64
	for {
		keys, next, err := rc.Scan(ctx, cursor, prefix+"*", 10_000).Result()
		if err != nil {
			b.Error(err)
			return
		}
		if len(keys) > 0 {
			if err := rc.Unlink(ctx, keys...).Err(); err != nil {
				b.Error(err)
				return
			}
		}
		if cursor = next; cursor == 0 {
			return
		}
	}
}

// BenchmarkLoad measures Counters.Load for a user's READY: 500 channels
// (one server's maximum), 3 roles each, every channel with a head, a
// position and a few mentions.
func BenchmarkLoad(b *testing.B) {
	rc, prefix := redistest.MustClient(b)
	ctx := context.Background()
	c := msgredis.NewCounters(rc, msgredis.CountersConfig{Prefix: prefix})
	const user, channels = 42, 500
	qs := make([]message.CounterQuery, channels)
	for i := range qs {
		ch := uint64(i + 1)
		qs[i] = message.CounterQuery{ChannelID: ch, Roles: []uint64{7, 8, 9}}
		for seq := uint64(1); seq <= 10; seq++ {
			m := message.Message{ID: seq, ChannelID: ch, AuthorID: 1, Seq: seq,
				Mentions: message.Mentions{Users: []uint64{user}, Roles: []uint64{8}, Everyone: seq%5 == 0}}
			if err := c.Accepted(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
		if _, _, err := c.Ack(ctx, user, message.ReadPosition{ChannelID: ch, Seq: 4, ID: 4}); err != nil {
			b.Fatal(err)
		}
	}
	var hook cmdCounter
	opt := *rc.Options()
	client := goredis.NewClient(&opt)
	defer client.Close()
	client.AddHook(&hook)
	c = msgredis.NewCounters(client, msgredis.CountersConfig{Prefix: prefix})
	b.ResetTimer()
	for range b.N {
		st, err := c.Load(ctx, user, qs)
		if err != nil {
			b.Fatal(err)
		}
		if st[0].Mentions != 6 || st[0].Head != 10 {
			b.Fatalf("state %+v", st[0])
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(hook.n.Load())/float64(b.N), "cmds/op")
}
