module github.com/sluice-relay/sluice

go 1.26.8

require (
	github.com/goccy/go-yaml v1.19.2
	golang.org/x/crypto v0.58.0
	golang.org/x/term v0.47.0
)

require golang.org/x/sys v0.49.0 // indirect
