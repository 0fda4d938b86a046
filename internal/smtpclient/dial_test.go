package smtpclient_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/smtpclient"
)

// Only the ConnectWithin limit passing is a slow connect: an address
// that refuses, or a caller that gives up (a shutdown), is not, or the
// caller would try the address again later instead of failing it.
func TestConnectWithinOnlyForSlowConnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refuses from now on
	o := smtpclient.Options{ConnectWithin: 250 * time.Millisecond}
	if _, err := smtpclient.Dial(context.Background(), addr, o); err == nil || errors.Is(err, smtpclient.ErrSlowConnect) {
		t.Errorf("refused connect: %v; want an error that is not ErrSlowConnect", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := smtpclient.Dial(ctx, addr, o); err == nil || errors.Is(err, smtpclient.ErrSlowConnect) {
		t.Errorf("connect with its context ended: %v; want an error that is not ErrSlowConnect", err)
	}
}
