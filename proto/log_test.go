package proto_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/proto/prototest"
)

// countHandler counts log records by level.
type countHandler struct {
	mu sync.Mutex
	n  map[slog.Level]int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[r.Level]++
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// TestWarningsRateLimited: an invalid query source is logged as a warning
// (RFC 9777 §5.1.14), an older-version query while an SSM group is joined
// as an error (RFC 9776 §7.2.1), at most once a minute each burst.
func TestWarningsRateLimited(t *testing.T) {
	ch := &countHandler{n: map[slog.Level]int{}}
	h := newMLD(t, func(c *proto.Config) { c.Logger = slog.New(ch) })
	q := prototest.MLDv2Query(any6, time.Second)
	q.Src = ip("2001:db8::1")
	for range 100 {
		h.recv(q)
	}
	if ch.n[slog.LevelWarn] != 1 {
		t.Errorf("%d warnings for 100 bad sources, want 1", ch.n[slog.LevelWarn])
	}
	h.at(2 * time.Minute)
	h.set("ff35::1", st(inc, "2001:db8::a"))
	h.recv(prototest.MLDv1Query(any6, time.Second))
	if ch.n[slog.LevelError] != 1 {
		t.Errorf("%d errors for an MLDv1 query with an SSM group joined, want 1", ch.n[slog.LevelError])
	}
}
