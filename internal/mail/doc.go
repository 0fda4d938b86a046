// Package mail owns the value types every stage shares — Address, ID,
// Envelope — and their parsers. It does no I/O: receive, queue, delivery
// and tracking all import it, so it imports none of them.
package mail
