package natsrpc

// Queued is how many requests wait in s's worker queues.
func Queued(s *Server) int {
	n := 0
	for _, q := range s.queues {
		n += len(q)
	}
	return n
}

// Stopping reports whether Shutdown has begun: no subscription takes new
// requests any more.
func Stopping(s *Server) bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}
