module github.com/mcstack/mcstack

go 1.26.0

require (
	github.com/mdlayher/packet v1.1.2
	golang.org/x/net v0.55.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/josharian/native v1.1.0 // indirect
	github.com/mdlayher/socket v0.4.1 // indirect
	golang.org/x/sync v0.1.0 // indirect
)
