package natsrpc

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/message"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// ServerConfig configures a Server. Zero values mean the defaults.
type ServerConfig struct {
	Workers    int           // default 64
	QueueDepth int           // per worker, default 256
	Timeout    time.Duration // per request, default 10s
}

// Server serves a message.Service on the bus.
type Server struct {
	svc *message.Service
	log *slog.Logger
	cfg ServerConfig

	subs    []*nats.Subscription
	queues  []chan job
	wg      sync.WaitGroup
	stop    chan struct{}
	mu      sync.RWMutex // held to queue a job; Shutdown takes it to set closing
	closing bool
	ctx     context.Context // cancelled when Shutdown gives up waiting
	cancel  context.CancelFunc
	stopped sync.Once
}

type job struct {
	msg *nats.Msg
	req proto.Message
}

// Serve starts answering message requests on nc.
func Serve(nc *nats.Conn, svc *message.Service, log *slog.Logger, cfg ServerConfig) (*Server, error) {
	if cfg.Workers == 0 {
		cfg.Workers = 64
	}
	if cfg.QueueDepth == 0 {
		cfg.QueueDepth = 256
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: svc, log: log, cfg: cfg, stop: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for range cfg.Workers {
		q := make(chan job, cfg.QueueDepth)
		s.queues = append(s.queues, q)
		s.wg.Add(1)
		go s.work(q)
	}
	for subject, newReq := range map[string]func() proto.Message{
		bus.MessageSend:   func() proto.Message { return new(pb.SendMessageRequest) },
		bus.MessageEdit:   func() proto.Message { return new(pb.EditMessageRequest) },
		bus.MessageDelete: func() proto.Message { return new(pb.DeleteMessageRequest) },
		bus.MessageTyping: func() proto.Message { return new(pb.TypingRequest) },
	} {
		sub, err := nc.QueueSubscribe(subject, bus.MessageQueue, func(msg *nats.Msg) { s.dispatch(msg, newReq()) })
		if err != nil {
			s.Shutdown(context.Background())
			return nil, err
		}
		s.subs = append(s.subs, sub)
	}
	return s, nc.Flush()
}

type channelRequest interface{ GetChannelId() uint64 }

// dispatch decodes a request and queues it on its channel's worker.
func (s *Server) dispatch(msg *nats.Msg, req proto.Message) {
	if err := proto.Unmarshal(msg.Data, req); err != nil {
		s.reply(msg, nil, guildhall.E("message.rpc", guildhall.Invalid, "malformed request"))
		return
	}
	if err := s.enqueue(job{msg, req}); err != nil {
		s.reply(msg, nil, err)
	}
}

// enqueue puts j on its channel's worker queue. Once Shutdown has begun it
// refuses: a job queued after the workers emptied their queues and left
// would never be answered.
func (s *Server) enqueue(j job) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closing {
		return guildhall.E("message.rpc", guildhall.Unavailable, "message service shutting down, retry")
	}
	ch := j.req.(channelRequest).GetChannelId()
	select {
	case s.queues[ch%uint64(len(s.queues))] <- j:
		return nil
	default:
		return guildhall.E("message.rpc", guildhall.Unavailable, "message service overloaded, retry")
	}
}

// work handles one queue until Shutdown, then empties it and returns.
func (s *Server) work(q chan job) {
	defer s.wg.Done()
	for {
		select {
		case j := <-q:
			s.handle(j)
		case <-s.stop:
			for {
				select {
				case j := <-q:
					s.handle(j)
				default:
					return
				}
			}
		}
	}
}

func (s *Server) handle(j job) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	var m message.Message
	var err error
	switch r := j.req.(type) {
	case *pb.SendMessageRequest:
		m, err = s.svc.Send(ctx, r.ActorId, r.ChannelId, r.Content, r.Nonce)
	case *pb.EditMessageRequest:
		m, err = s.svc.Edit(ctx, r.ActorId, r.ChannelId, r.MessageId, r.Content)
	case *pb.DeleteMessageRequest:
		err = s.svc.Delete(ctx, r.ActorId, r.ChannelId, r.MessageId)
	case *pb.TypingRequest:
		err = s.svc.Typing(ctx, r.ActorId, r.ChannelId)
	}
	if err != nil && guildhall.KindOf(err) == guildhall.Internal {
		s.log.Error("message request failed", "err", err)
	}
	if err != nil || m.ID == 0 {
		s.reply(j.msg, nil, err)
		return
	}
	s.reply(j.msg, &m, nil)
}

func (s *Server) reply(msg *nats.Msg, m *message.Message, err error) {
	var r pb.MessageReply
	if err != nil {
		r.Error = bus.ErrorProto(err)
	} else if m != nil {
		r.Message = ToProto(*m)
	}
	data, _ := proto.Marshal(&r)
	if err := msg.Respond(data); err != nil {
		s.log.Warn("reply failed", "err", err)
	}
}

// Shutdown stops taking requests, finishes the queued ones and returns;
// if ctx ends first, requests in progress are cancelled. It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopped.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		// Drain, not Unsubscribe: requests the connection already holds
		// still reach dispatch and are told to retry, instead of being
		// dropped unanswered.
		for _, sub := range s.subs {
			_ = sub.Drain()
		}
		close(s.stop)
	})
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		return ctx.Err()
	}
}
