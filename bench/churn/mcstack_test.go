package churn

// Design (c): the real stack over the shared slowEndpoint.

import (
	"net/netip"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/stack"
)

func init() {
	designs = append(designs, designSpec{"mcstack", func(ep *slowEndpoint) system { return newMcstack(ep) }})
}

type mcstack struct {
	ep  *slowEndpoint
	s   *stack.Stack
	ifc *stack.Interface
}

func newMcstack(ep *slowEndpoint) *mcstack {
	// The defaults (CoalesceDelay 2 ms) but the baselines' socket queue
	// length, so a reader that falls behind drops at the same point.
	s := stack.New(stack.Config{QueueLen: sockQueue})
	ifc, err := s.AddInterface(ep, stack.InterfaceConfig{Addrs: []netip.Prefix{hostAddr}})
	if err != nil {
		panic("mcstack: AddInterface: " + err.Error())
	}
	return &mcstack{ep: ep, s: s, ifc: ifc}
}

func (m *mcstack) handler() link.Handler { return m.ep.handler }

func (m *mcstack) shutdown() { m.s.Close() }

func (m *mcstack) listen(port uint16, groups []netip.Addr) (sock, error) {
	c, err := m.s.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), port))
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if err := c.JoinGroup(m.ifc, g); err != nil {
			c.Close()
			return nil, err
		}
	}
	return &msock{c: c}, nil
}

type msock struct{ c *stack.Conn }

func (s *msock) read(buf []byte) (int, error) {
	n, _, err := s.c.ReadMsg(buf)
	return n, err
}

func (s *msock) close() error { return s.c.Close() }
