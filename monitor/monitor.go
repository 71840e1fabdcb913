// Package monitor serves a task manager over HTTP: the operations
// dashboard at / (one page, embedded in the binary), the admin API as
// JSON under /api/v1, and Prometheus metrics at /metrics.
//
// The API, for any task.Operator (a *task.Manager in process, or a
// *task.Client that reaches a manager from another agent of the
// workspace):
//
//	GET    /api/v1/stats                     task.Stats (also at /stats)
//	GET    /api/v1/tasks?status=&type=&worker=&id=&since=&until=&cursor=&limit=
//	                                         task.TaskPage, newest first
//	GET    /api/v1/tasks/{id}                task.TaskDetail
//	POST   /api/v1/tasks/{id}/cancel
//	POST   /api/v1/tasks/{id}/retry
//	DELETE /api/v1/tasks/{id}
//	POST   /api/v1/types/{type}/pause
//	POST   /api/v1/types/{type}/resume
//	POST   /api/v1/grants/{id}/revoke
//	GET    /api/v1/workers                   []task.WorkerView
//	GET    /api/v1/series?since=             []task.Sample
//	GET    /api/v1/events?after=&feed=&limit=&wait=10s&task=
//	                                         task.EventPage (a long poll)
//
// Times are RFC 3339. A refusal has an HTTP status that says what kind
// (404 unknown task, 409 not final, 400 bad filter, 401 no or wrong
// token, 503 not the leader or stopping) and a body {"error", "code"};
// [Client] turns it back into the task package's named error.
//
// Security: by default the monitor listens on loopback only, answers
// only requests addressed to a loopback name (no DNS rebinding), and
// refuses actions a web page of another origin could send (a POST must
// be JSON, its Origin the monitor's). To serve it elsewhere give it a
// bearer token ([WithToken]); every route but the page then needs
// "Authorization: Bearer <token>" (the page asks for it).
package monitor

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"time"

	"github.com/ceylon-go/ceylon/task"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed static
var static embed.FS

// ErrNeedsToken reports a monitor asked to listen beyond loopback without
// a token.
var ErrNeedsToken = errors.New("monitor: a non-loopback address needs a bearer token (WithToken)")

// Option configures a monitor.
type Option func(*config)

type config struct{ token string }

// WithToken makes every route but the page require the bearer token
// (and lets the monitor listen beyond loopback). An empty token is no
// token.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// Handler serves the dashboard, the admin API and (when op is a
// *task.Manager, or has a Prometheus registry) /metrics for op. Without
// [WithToken] it answers only clients on loopback asking for a loopback
// name; mounted behind a proxy on the same machine, that is everyone the
// proxy lets in: give it a token.
func Handler(op task.Operator, opts ...Option) http.Handler {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	mux := http.NewServeMux()
	page, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux.Handle("GET /", http.FileServerFS(page))
	if reg, ok := op.(interface{ Metrics() *prometheus.Registry }); ok {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg.Metrics(), promhttp.HandlerOpts{}))
	}
	api(mux, op)
	return guard(cfg, mux)
}

// Server is a running monitor.
type Server struct {
	srv  *http.Server
	addr string
	done chan error
}

// Start serves op's monitor on addr ("127.0.0.1:0" picks a free port).
// An address beyond loopback needs [WithToken] ([ErrNeedsToken]).
func Start(addr string, op task.Operator, opts ...Option) (*Server, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.token == "" && !loopbackAddr(addr) {
		return nil, fmt.Errorf("%w: %s", ErrNeedsToken, addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		srv:  &http.Server{Handler: Handler(op, opts...), ReadHeaderTimeout: 5 * time.Second},
		addr: l.Addr().String(),
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// loopbackAddr reports whether addr (host:port) listens on loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	return isLoopbackHost(host)
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr is the address the monitor listens on.
func (s *Server) Addr() string { return s.addr }

// URL is the dashboard's URL.
func (s *Server) URL() string { return "http://" + s.addr + "/" }

// Close stops the server and waits for it.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	return errors.Join(err, <-s.done)
}
