// Package monitor serves a task manager over HTTP: Prometheus metrics at
// /metrics, a JSON snapshot at /stats (workers, queue, timings, recent
// tasks), and a live dashboard at / — one page, embedded in the binary,
// that polls /stats.
package monitor

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"time"

	"github.com/ceylon-go/ceylon/task"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed static
var static embed.FS

// Handler serves the dashboard (/), /stats and /metrics for m.
func Handler(m *task.Manager) http.Handler {
	mux := http.NewServeMux()
	page, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux.Handle("GET /", http.FileServerFS(page))
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Metrics(), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		s, err := m.Stats(ctx)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(s)
	})
	return mux
}

// Server is a running monitor.
type Server struct {
	srv  *http.Server
	addr string
	done chan error
}

// Start serves m's monitor on addr ("127.0.0.1:0" picks a free port).
func Start(addr string, m *task.Manager) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		srv:  &http.Server{Handler: Handler(m), ReadHeaderTimeout: 5 * time.Second},
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
