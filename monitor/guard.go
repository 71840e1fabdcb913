package monitor

import (
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"strings"
)

// guard checks every request before the routes see it: the token (or,
// without one, a loopback Host: a page on another site that resolves its
// own name to 127.0.0.1 is refused), and, for actions, a JSON body type
// and the monitor's own Origin, which a cross-site form or fetch cannot
// forge without a preflight the monitor never grants.
func guard(cfg config, next http.Handler) http.Handler {
	want := []byte("Bearer " + cfg.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/stats" && r.URL.Path != "/metrics"
		switch {
		case cfg.token == "" && (!isLoopbackHost(hostOnly(r.Host)) || !isLoopbackHost(hostOnly(r.RemoteAddr))):
			writeJSON(w, http.StatusForbidden, apiError{Error: "monitor: without a token the monitor answers loopback clients, for loopback names, only (WithToken)", Code: "forbidden"})
			return
		case cfg.token != "" && !page && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1:
			w.Header().Set("WWW-Authenticate", `Bearer realm="ceylon"`)
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "monitor: missing or wrong bearer token", Code: "unauthorized"})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
				writeJSON(w, http.StatusUnsupportedMediaType, apiError{Error: "monitor: an action must be sent as application/json", Code: "forbidden"})
				return
			}
			if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
				writeJSON(w, http.StatusForbidden, apiError{Error: "monitor: an action from another origin", Code: "forbidden"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hostOnly is a Host header without its port.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}
