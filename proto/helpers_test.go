package proto_test

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/proto/prototest"
)

var (
	t0     = time.Unix(1_000_000, 0)
	src4   = netip.MustParseAddr("192.0.2.2")
	src6   = netip.MustParseAddr("fe80::2")
	any4   = netip.IPv4Unspecified()
	any6   = netip.IPv6Unspecified()
	inc    = membership.Include
	exc    = membership.Exclude
	nonMem = membership.State{}
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ips(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = ip(s)
	}
	return out
}

func st(m membership.Mode, srcs ...string) membership.State {
	return membership.NewState(m, ips(srcs...))
}

// event is a report seen at an offset from t0.
type event struct {
	at time.Duration
	r  prototest.Report
}

// harness drives one engine with a fake clock and checks every packet it
// emits for the invariants of RFC 9776 §4 / RFC 9777 §5 (hop limit 1,
// Router Alert, source address, size within the MTU).
type harness struct {
	t     *testing.T
	e     proto.Engine
	now   time.Time
	v6    bool
	src   netip.Addr
	mtu   int
	state map[netip.Addr]membership.State
}

type opt func(*proto.Config)

func withMTU(n int) opt           { return func(c *proto.Config) { c.MTU = n } }
func withForce(v int) opt         { return func(c *proto.Config) { c.ForceVersion = v } }
func withRobustness(n int) opt    { return func(c *proto.Config) { c.Robustness = n } }
func withSource(a netip.Addr) opt { return func(c *proto.Config) { c.Source = a } }
func withAcceptNoRA() opt         { return func(c *proto.Config) { c.AcceptWithoutRouterAlert = true } }
func withURI(d time.Duration) opt { return func(c *proto.Config) { c.UnsolicitedReportInterval = d } }
func withV1URI(d time.Duration) opt {
	return func(c *proto.Config) { c.V1UnsolicitedReportInterval = d }
}
func withInterval(d time.Duration) opt { return func(c *proto.Config) { c.QueryInterval = d } }
func withRand(seed uint64) opt {
	return func(c *proto.Config) { c.Rand = rand.New(rand.NewPCG(seed, 2)) }
}

func newH(t *testing.T, v6 bool, opts ...opt) *harness {
	t.Helper()
	cfg := proto.Config{Interface: "test0", Rand: rand.New(rand.NewPCG(1, 2))}
	if v6 {
		cfg.Source = src6
	} else {
		cfg.Source = src4
	}
	for _, o := range opts {
		o(&cfg)
	}
	h := &harness{t: t, now: t0, v6: v6, src: cfg.Source, mtu: cfg.MTU, state: map[netip.Addr]membership.State{}}
	if h.mtu == 0 {
		h.mtu = 1500
	}
	if !h.src.IsValid() {
		h.src = any4
		if v6 {
			h.src = any6
		}
	}
	if v6 {
		h.e = proto.NewMLD(cfg)
	} else {
		h.e = proto.NewIGMP(cfg)
	}
	return h
}

func newIGMP(t *testing.T, opts ...opt) *harness { return newH(t, false, opts...) }
func newMLD(t *testing.T, opts ...opt) *harness  { return newH(t, true, opts...) }

// set changes the interface state of one group (one delta) at the current time.
func (h *harness) set(group string, s membership.State) {
	h.setMany(map[string]membership.State{group: s})
}

func (h *harness) setMany(m map[string]membership.State) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var ds []membership.Delta
	for _, k := range keys {
		g := ip(k)
		ds = append(ds, membership.Delta{Group: g, Old: h.state[g], New: m[k]})
		h.state[g] = m[k]
	}
	h.e.StateChanged(h.now, ds)
}

// at moves the clock to t0+d, running every timer due on the way.
func (h *harness) at(d time.Duration) []event {
	h.t.Helper()
	return h.runUntil(t0.Add(d))
}

func (h *harness) runUntil(end time.Time) []event {
	h.t.Helper()
	var evs []event
	evs = append(evs, h.takeAt()...)
	for i := 0; ; i++ {
		if i > 100000 {
			h.t.Fatal("timers never settle")
		}
		next, ok := h.e.NextTimer()
		if !ok || next.After(end) {
			break
		}
		if next.After(h.now) {
			h.now = next
		} // a deadline already past (a re-announcement) runs now
		h.e.Tick(h.now)
		evs = append(evs, h.takeAt()...)
	}
	if end.After(h.now) {
		h.now = end
	}
	return evs
}

// drain runs all timers (but stops at an hour, past any response time).
func (h *harness) drain() []event {
	h.t.Helper()
	return h.runUntil(h.now.Add(time.Hour))
}

func (h *harness) recv(m proto.Received) { h.e.Receive(h.now, m) }

// takeAt decodes the queued packets, stamping them with the current time.
func (h *harness) takeAt() []event {
	h.t.Helper()
	var evs []event
	for _, p := range h.e.TakeOutgoing() {
		r, err := prototest.Decode(p)
		if err != nil {
			h.t.Fatalf("emitted packet does not decode: %v", err)
		}
		if r.TTL != 1 || !r.RouterAlert {
			h.t.Errorf("%v: TTL %d, router alert %v; want 1, true", r, r.TTL, r.RouterAlert)
		}
		if r.Src != h.src {
			h.t.Errorf("%v: source %v, want %v", r, r.Src, h.src)
		}
		if !h.v6 && r.TOS != 0xc0 {
			h.t.Errorf("%v: TOS %#x, want 0xc0 (RFC 9776 §4)", r, r.TOS)
		}
		if r.Size > h.mtu {
			h.t.Errorf("%v: %d bytes exceed the MTU %d", r, r.Size, h.mtu)
		}
		evs = append(evs, event{at: h.now.Sub(t0), r: r})
	}
	return evs
}

// strs formats the reports of evs.
func strs(evs []event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.r.String()
	}
	return out
}

func wantReports(t *testing.T, evs []event, want ...string) {
	t.Helper()
	got := strs(evs)
	if !slices.Equal(got, want) {
		t.Errorf("reports:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

// wantWithin checks every event lies in (lo, hi] from t0.
func wantWithin(t *testing.T, evs []event, lo, hi time.Duration) {
	t.Helper()
	for _, e := range evs {
		if e.at <= lo || e.at > hi {
			t.Errorf("%v sent at %v, want in (%v, %v]", e.r, e.at, lo, hi)
		}
	}
}
