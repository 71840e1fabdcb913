package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/task"
)

// The admin API over HTTP: task.Operator's calls as JSON routes under
// /api/v1 (see the package doc). A refused call answers with an HTTP
// status that says what kind of refusal it is and a body
// {"error": "…", "code": "…"} whose code is the task package's wire code
// (task.ErrorCode), which Client turns back into the named error.

// apiTimeout bounds one call to the manager (an events wait adds its own).
const apiTimeout = 10 * time.Second

// apiError is the body of a refused call.
type apiError struct {
	Error  string `json:"error"`
	Code   string `json:"code"`
	Leader string `json:"leader,omitempty"`
}

// statusOf is the HTTP status for a wire code.
func statusOf(code string) int {
	switch code {
	case messages.CodeUnknownTask, messages.CodeUnknownOp:
		return http.StatusNotFound
	case messages.CodeNotFinal:
		return http.StatusConflict
	case messages.CodeUnauthorized:
		return http.StatusForbidden
	case messages.CodeBadFilter, messages.CodeInvalid:
		return http.StatusBadRequest
	case messages.CodeNotLeader, messages.CodeStopped, messages.CodeBusy, messages.CodeJournal:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	code := task.ErrorCode(err)
	if errors.Is(err, context.DeadlineExceeded) {
		writeJSON(w, http.StatusGatewayTimeout, apiError{Error: err.Error(), Code: messages.CodeOther})
		return
	}
	writeJSON(w, statusOf(code), apiError{Error: err.Error(), Code: code})
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeError(w, fmt.Errorf("%w: %s", task.ErrBadFilter, fmt.Sprintf(format, args...)))
}

// api registers the routes on mux.
func api(mux *http.ServeMux, op task.Operator) {
	call := func(h func(ctx context.Context, r *http.Request) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
			defer cancel()
			v, err := h(ctx, r)
			if err != nil {
				writeError(w, err)
				return
			}
			if v == nil {
				v = struct{}{}
			}
			writeJSON(w, http.StatusOK, v)
		}
	}
	act := func(do func(context.Context, string) error) http.HandlerFunc {
		return call(func(ctx context.Context, r *http.Request) (any, error) {
			return nil, do(ctx, r.PathValue("id"))
		})
	}
	stats := call(func(ctx context.Context, _ *http.Request) (any, error) { return op.Stats(ctx) })
	mux.Handle("GET /stats", stats) // the dashboard's first route, kept
	mux.Handle("GET /api/v1/stats", stats)
	mux.HandleFunc("GET /api/v1/tasks", func(w http.ResponseWriter, r *http.Request) {
		f, err := filterOf(r)
		if err != nil {
			badRequest(w, "%v", err)
			return
		}
		call(func(ctx context.Context, _ *http.Request) (any, error) { return op.ListTasks(ctx, f) })(w, r)
	})
	mux.Handle("GET /api/v1/tasks/{id}", call(func(ctx context.Context, r *http.Request) (any, error) {
		return op.TaskDetail(ctx, r.PathValue("id"))
	}))
	mux.Handle("POST /api/v1/tasks/{id}/cancel", act(op.Cancel))
	mux.Handle("POST /api/v1/tasks/{id}/retry", act(op.Retry))
	mux.Handle("DELETE /api/v1/tasks/{id}", act(op.Delete))
	mux.Handle("POST /api/v1/types/{id}/pause", act(op.Pause))
	mux.Handle("POST /api/v1/types/{id}/resume", act(op.Resume))
	mux.Handle("POST /api/v1/grants/{id}/revoke", act(op.Revoke))
	mux.Handle("GET /api/v1/workers", call(func(ctx context.Context, _ *http.Request) (any, error) { return op.Workers(ctx) }))
	mux.HandleFunc("GET /api/v1/series", func(w http.ResponseWriter, r *http.Request) {
		since, err := timeParam(r, "since")
		if err != nil {
			badRequest(w, "%v", err)
			return
		}
		call(func(ctx context.Context, _ *http.Request) (any, error) { return op.Series(ctx, since) })(w, r)
	})
	mux.HandleFunc("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		q, err := eventQueryOf(r)
		if err != nil {
			badRequest(w, "%v", err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), apiTimeout+q.Wait)
		defer cancel()
		p, err := op.Events(ctx, q)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
}

// filterOf reads a TaskFilter from the query string: status, type,
// worker, id, since, until (RFC 3339), cursor, limit.
func filterOf(r *http.Request) (task.TaskFilter, error) {
	q := r.URL.Query()
	f := task.TaskFilter{Status: q.Get("status"), Type: q.Get("type"), Worker: q.Get("worker"), ID: q.Get("id"), Cursor: q.Get("cursor")}
	var err error
	if f.Since, err = timeParam(r, "since"); err != nil {
		return f, err
	}
	if f.Until, err = timeParam(r, "until"); err != nil {
		return f, err
	}
	if f.Limit, err = intParam(r, "limit"); err != nil {
		return f, err
	}
	return f, nil
}

// eventQueryOf reads an EventQuery: after, feed, limit, wait (a Go
// duration, "10s"), task.
func eventQueryOf(r *http.Request) (task.EventQuery, error) {
	qs := r.URL.Query()
	q := task.EventQuery{TaskID: qs.Get("task"), Feed: qs.Get("feed")}
	if s := qs.Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return q, fmt.Errorf("after %q: not a sequence number", s)
		}
		q.After = n
	}
	var err error
	if q.Limit, err = intParam(r, "limit"); err != nil {
		return q, err
	}
	if s := qs.Get("wait"); s != "" {
		if q.Wait, err = time.ParseDuration(s); err != nil {
			return q, fmt.Errorf("wait %q: %v", s, err)
		}
		q.Wait = min(q.Wait, task.MaxEventWait)
	}
	return q, nil
}

func timeParam(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, fmt.Errorf("%s %q: not an RFC 3339 time", name, s)
	}
	return t, nil
}

func intParam(r *http.Request, name string) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q: not a number", name, s)
	}
	return n, nil
}
