package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Client talks to a Server over its unix socket.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client for the socket at path. Close releases its
// idle connection.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableCompression: true,
	}
	return &Client{path: path, hc: &http.Client{Transport: tr}}
}

// Close closes idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) get(ctx context.Context, p string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://mcast"+p, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: read %s: %w", c.path, p, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin socket %s: GET %s: %s", c.path, p, resp.Status)
	}
	return body, nil
}

// StatusJSON returns the raw JSON of GET /status.
func (c *Client) StatusJSON(ctx context.Context) ([]byte, error) { return c.get(ctx, "/status") }

// Status fetches and decodes GET /status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	b, err := c.StatusJSON(ctx)
	if err != nil {
		return Status{}, err
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return Status{}, fmt.Errorf("admin socket %s: decode status: %w", c.path, err)
	}
	return st, nil
}

// Metrics returns the Prometheus text of GET /metrics.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) { return c.get(ctx, "/metrics") }

// FindLiveSockets lists the socket files matching SocketGlobs that a
// running server may answer on (live) and those left behind by a process
// that is gone (stale), each sorted. A socket is stale when the process
// its name carries (mcast-PID.sock) no longer exists or when a connection
// to it is refused; one that cannot be tried (no permission) counts as
// live.
func FindLiveSockets() (live, stale []string) { return SplitStale(FindSockets()) }

// SplitStale splits socket paths into live and stale ones, as
// FindLiveSockets does.
func SplitStale(paths []string) (live, stale []string) {
	for _, p := range paths {
		if socketStale(p) {
			stale = append(stale, p)
		} else {
			live = append(live, p)
		}
	}
	return live, stale
}

func socketStale(path string) bool {
	base := filepath.Base(path)
	if pid, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(base, "mcast-"), ".sock")); err == nil && pid > 0 {
		// Signal 0 checks existence; EPERM means it exists (another user's).
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
	}
	c, err := net.DialTimeout("unix", path, 500*time.Millisecond)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// FindSockets lists existing socket files matching SocketGlobs, sorted.
func FindSockets() []string {
	seen := map[string]bool{}
	var out []string
	for _, g := range SocketGlobs() {
		m, _ := filepath.Glob(g)
		for _, p := range m {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}
