package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mcstack/mcstack/internal/admin"
)

// metricsServer serves the Prometheus text (GET /metrics) on TCP for
// `mcast recv --metrics-listen`. Its listener is bound before the link is
// opened, so that a taken port fails the command before it joins anything;
// it serves from serve on.
type metricsServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve returned; nil until serve
}

// checkMetricsAddr validates a --metrics-listen HOST:PORT without
// resolving or binding anything: HOST is empty (every address), an IP
// address (IPv6 in brackets) or a host name; PORT is a number (0: any free
// port).
func checkMetricsAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErr("--metrics-listen %q: want HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return usageErr("--metrics-listen %q: port %q is not a number in 0..65535", addr, port)
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !validHostName(host) {
		return usageErr("--metrics-listen %q: %q is neither an IP address nor a host name", addr, host)
	}
	return nil
}

func validHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// listenMetrics checks addr (a usage error when it does not parse) and
// binds it (an exit-3 error when that fails). An empty addr means no
// metrics server: it returns nil, and the methods of a nil server do
// nothing.
func listenMetrics(addr string) (*metricsServer, error) {
	if addr == "" {
		return nil, nil
	}
	if err := checkMetricsAddr(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, ifaceErr(fmt.Errorf("metrics: %w", err))
	}
	return &metricsServer{ln: ln}, nil
}

// addr is the bound address (the port chosen when 0 was given).
func (m *metricsServer) addr() net.Addr { return m.ln.Addr() }

// serve starts serving status as Prometheus text in a goroutine of its own
// and says where on w.
func (m *metricsServer) serve(w io.Writer, status admin.StatusFunc) {
	if m == nil || m.done != nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", admin.MetricsHandler(status))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "mcast recv: GET /metrics (Prometheus text)")
	})
	m.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		m.srv.Serve(m.ln) // returns ErrServerClosed after close; other errors end serving
	}()
	fmt.Fprintf(w, "mcast recv: metrics on http://%s/metrics\n", m.addr())
}

// close stops serving, waiting (a few seconds at most) for requests in
// flight and for the serving goroutine, or just closes the listener when
// serve was never called. It may be called more than once.
func (m *metricsServer) close() error {
	if m == nil {
		return nil
	}
	if m.done == nil {
		if err := m.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("metrics: close: %w", err)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if err != nil {
		m.srv.Close()
	}
	<-m.done
	if err != nil {
		return fmt.Errorf("metrics: close: %w", err)
	}
	return nil
}
