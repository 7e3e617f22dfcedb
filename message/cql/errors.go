package cql

import (
	"errors"

	"github.com/gocql/gocql"

	"github.com/guildhall/guildhall"
)

// wrap annotates err with op like guildhall.Wrap, and makes the errors of
// a cluster that is down, overloaded or slow Unavailable rather than
// Internal, so that the caller is told to retry. A write that timed out
// may have been applied; see doc.go for what a retry of each write does.
func wrap(op string, err error) error {
	if err == nil || !unavailable(err) {
		return guildhall.Wrap(op, err)
	}
	return &guildhall.Error{Op: op, Kind: guildhall.Unavailable, Msg: "message history unavailable, retry", Err: err}
}

func unavailable(err error) bool {
	var re gocql.RequestError
	if errors.As(err, &re) {
		switch re.Code() {
		case gocql.ErrCodeUnavailable, gocql.ErrCodeOverloaded, gocql.ErrCodeBootstrapping,
			gocql.ErrCodeWriteTimeout, gocql.ErrCodeReadTimeout, gocql.ErrCodeCASWriteUnknown:
			return true
		}
	}
	for _, e := range []error{gocql.ErrNoConnections, gocql.ErrTimeoutNoResponse, gocql.ErrConnectionClosed, gocql.ErrNoStreams} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
