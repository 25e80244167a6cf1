package proto

// TEMPORARY stand-in so the stack package compiles while the engines are
// written. The engine author deletes this file when NewIGMP/NewMLD exist.

import (
	"net/netip"
	"time"

	"github.com/mcstack/mcstack/membership"
)

type placeholder struct{ fam string }

func (placeholder) StateChanged(time.Time, []membership.Delta) {}
func (placeholder) Receive(time.Time, Received)                {}
func (placeholder) Tick(time.Time)                             {}
func (placeholder) NextTimer() (time.Time, bool)               { return time.Time{}, false }
func (placeholder) TakeOutgoing() []Packet                     { return nil }
func (placeholder) SetSource(netip.Addr)                       {}
func (placeholder) Shutdown(time.Time)                         {}
func (p placeholder) Status() Status                           { return Status{Family: p.fam} }

func NewIGMP(cfg Config) Engine { return placeholder{"igmp"} }
func NewMLD(cfg Config) Engine  { return placeholder{"mld"} }
