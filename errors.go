// Package guildhall holds what every Guildhall package shares: the error
// type with its kinds. Domain types live in their own packages (member,
// message, role); this package stays tiny on purpose.
package guildhall

import (
	"errors"
	"fmt"
)

// Kind classifies an error. The edge maps each kind to one HTTP status and
// one client-visible code (see Code) in exactly one place per protocol.
type Kind uint8

const (
	Internal         Kind = iota // something broke on our side; the message is not shown to clients
	Invalid                      // the request is malformed or breaks a limit
	Unauthenticated              // no, an expired or a revoked token
	Forbidden                    // authenticated, but not allowed
	NotFound                     // no such thing, or the caller may not know it exists
	Conflict                     // the request conflicts with current state (name taken, ...)
	TooLarge                     // a body, frame or field over its limit
	RateLimited                  // too many requests
	Unavailable                  // a dependency is down or the server is shutting down; retry
	MethodNotAllowed             // the path exists, the HTTP method does not
)

// Code is the stable, client-visible code of a kind, documented in
// docs/api.md. Clients switch on it; never change one.
func (k Kind) Code() string {
	switch k {
	case Invalid:
		return "invalid_argument"
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	case NotFound:
		return "not_found"
	case Conflict:
		return "conflict"
	case TooLarge:
		return "too_large"
	case RateLimited:
		return "rate_limited"
	case Unavailable:
		return "unavailable"
	case MethodNotAllowed:
		return "method_not_allowed"
	default:
		return "internal"
	}
}

// KindFromCode is the inverse of Kind.Code, used where an error crossed the
// bus as {code, message}.
func KindFromCode(code string) Kind {
	for k := Internal; k <= MethodNotAllowed; k++ {
		if k.Code() == code {
			return k
		}
	}
	return Internal
}

// Error is the one error type of Guildhall.
type Error struct {
	Op   string // the operation that failed, e.g. "member.CreateServer"
	Kind Kind
	Msg  string // safe to show to the client
	Err  error  // the underlying error, if any; never shown to clients
}

// E builds an error of a kind with a client-visible message.
func E(op string, kind Kind, format string, args ...any) error {
	return &Error{Op: op, Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Wrap annotates err with op. An error that already has a kind keeps it;
// any other error becomes Internal. Wrap(op, nil) is nil.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return &Error{Op: op, Kind: e.Kind, Msg: e.Msg, Err: err}
	}
	return &Error{Op: op, Kind: Internal, Err: err}
}

func (e *Error) Error() string {
	s := e.Op
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil && (e.Msg == "" || e.Kind == Internal) {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of err: Internal for errors that carry none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Message returns what a client may be told about err.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal {
		for e.Msg == "" {
			var inner *Error
			if !errors.As(e.Err, &inner) {
				break
			}
			e = inner
		}
		if e.Msg != "" {
			return e.Msg
		}
	}
	return "internal error"
}
