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

// attrHandler records the attribute keys of every log record, including
// those added with Logger.With.
type attrHandler struct {
	mu    *sync.Mutex
	with  []slog.Attr
	keys  map[string]bool
	count *int
}

func (h attrHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h attrHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.count++
	for _, a := range h.with {
		h.keys[a.Key] = true
	}
	r.Attrs(func(a slog.Attr) bool { h.keys[a.Key] = true; return true })
	return nil
}
func (h attrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.with = append(append([]slog.Attr(nil), h.with...), as...)
	return h
}
func (h attrHandler) WithGroup(string) slog.Handler { return h }

// TestLogKeys: log records use the project's attribute keys: interface,
// group, source, err.
func TestLogKeys(t *testing.T) {
	n := 0
	ah := attrHandler{mu: &sync.Mutex{}, keys: map[string]bool{}, count: &n}
	h := newMLD(t, func(c *proto.Config) { c.Logger = slog.New(ah) })
	bad := prototest.MLDv2Query(any6, time.Second)
	bad.Src = ip("2001:db8::1")
	h.recv(bad)                                                                                                  // invalid source
	h.recv(with(prototest.MLDv2Query(any6, time.Second), func(r *proto.Received) { r.Payload = r.Payload[:3] })) // malformed
	h.set("ff35::1", st(inc, "2001:db8::a"))
	h.recv(prototest.MLDv1Query(ip("ff35::1"), time.Second)) // older query for an SSM group
	if n < 3 {
		t.Fatalf("%d log records, want at least 3", n)
	}
	for _, k := range []string{"interface", "group", "source", "err"} {
		if !ah.keys[k] {
			t.Errorf("no %q attribute in %v", k, ah.keys)
		}
	}
	for _, k := range []string{"ifc", "src"} {
		if ah.keys[k] {
			t.Errorf("attribute %q used; the convention is interface, group, source, err", k)
		}
	}
}
