package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// StatusFunc returns a fresh snapshot. It is called from the server's
// request goroutines, possibly concurrently.
type StatusFunc func() Status

// ErrInUse is returned by Listen when another live server owns the socket.
var ErrInUse = errors.New("admin socket in use by a running process")

// Server serves GET /status and GET /metrics on a unix socket.
type Server struct {
	path   string
	ln     net.Listener
	srv    *http.Server
	done   chan struct{}
	err    error // Serve's result, valid after done is closed
	closed sync.Once
}

// DefaultSocketPath is where `mcast recv` listens when no path is given:
// /run/mcast-PID.sock, or in the temporary directory when /run is not
// writable.
func DefaultSocketPath(pid int) string {
	name := fmt.Sprintf("mcast-%d.sock", pid)
	if unixWritable("/run") {
		return filepath.Join("/run", name)
	}
	return filepath.Join(os.TempDir(), name)
}

// SocketGlobs are the patterns `mcast stat` searches when no socket is given.
func SocketGlobs() []string {
	return []string{"/run/mcast-*.sock", filepath.Join(os.TempDir(), "mcast-*.sock")}
}

func unixWritable(dir string) bool {
	return syscall.Access(dir, 2 /* W_OK */) == nil
}

// Listen creates the unix socket at path (mode 0600) and starts serving
// in a goroutine of its own. A stale socket file left by a dead process is
// replaced; one a live server answers on is not (ErrInUse).
func Listen(path string, status StatusFunc) (*Server, error) {
	if path == "" {
		return nil, errors.New("admin: empty socket path")
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %s: %w", path, err)
	}
	// Close removes the socket file; the listener must not do it a
	// second time (and must not remove a successor's file).
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("admin: chmod %s: %w", path, err)
	}
	s := &Server{path: path, ln: ln, done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           Handler(status),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s, nil
}

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("admin: %s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("admin: %s: %w", path, ErrInUse)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("admin: remove stale socket: %w", err)
	}
	return nil
}

// Path is the socket path.
func (s *Server) Path() string { return s.path }

// Close stops the server, waits for its goroutine and in-flight requests
// (at most a few seconds) and removes the socket file.
func (s *Server) Close() error {
	var err error
	s.closed.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		err = s.srv.Shutdown(ctx)
		if err != nil {
			s.srv.Close()
		}
		<-s.done
		if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = rerr
		}
		if err == nil {
			err = s.err
		}
	})
	if err != nil {
		return fmt.Errorf("admin: close: %w", err)
	}
	return nil
}

// MetricsHandler serves a fresh snapshot as Prometheus text: GET /metrics
// of the admin socket, and of `mcast recv --metrics-listen`.
func MetricsHandler(status StatusFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", MetricsContentType)
		WriteMetrics(w, status())
	})
}

// Handler returns the HTTP handler serving /status and /metrics.
func Handler(status StatusFunc) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(status())
	})
	mux.Handle("GET /metrics", MetricsHandler(status))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "mcast admin socket: GET /status (JSON), GET /metrics (Prometheus text)")
	})
	return mux
}
