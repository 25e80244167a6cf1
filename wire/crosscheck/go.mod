module github.com/mcstack/mcstack/wire/crosscheck

go 1.26.0

replace github.com/mcstack/mcstack => ../..

require (
	github.com/gopacket/gopacket v1.7.7
	github.com/mcstack/mcstack v0.0.0-00010101000000-000000000000
)

require golang.org/x/sys v0.50.0 // indirect
