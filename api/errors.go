package api

import (
	"encoding/json"
	"log/slog"
	"net/http"

	guildhall "github.com/guildhall/guildhall"
)

// status maps an error kind to its HTTP status.
func status(k guildhall.Kind) int {
	switch k {
	case guildhall.Invalid:
		return http.StatusBadRequest
	case guildhall.Unauthenticated:
		return http.StatusUnauthorized
	case guildhall.Forbidden:
		return http.StatusForbidden
	case guildhall.NotFound:
		return http.StatusNotFound
	case guildhall.Conflict:
		return http.StatusConflict
	case guildhall.TooLarge:
		return http.StatusRequestEntityTooLarge
	case guildhall.RateLimited:
		return http.StatusTooManyRequests
	case guildhall.Unavailable:
		return http.StatusServiceUnavailable
	case guildhall.MethodNotAllowed:
		return http.StatusMethodNotAllowed
	default:
		return http.StatusInternalServerError
	}
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error writes err as {code, message} with its status. Internal errors are
// logged and shown to the client only as "internal error".
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	k := guildhall.KindOf(err)
	if k == guildhall.Internal {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status(k), errorBody{Code: k.Code(), Message: guildhall.Message(err)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
