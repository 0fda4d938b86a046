package queue_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/reply"
)

// reloaded parses the fixture's config with extra added, as a reload
// would read it.
func (f *fixture) reloaded(t *testing.T, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("", []byte(strings.Replace(testConfig, "DATA", f.dir, 1)+extra))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A reload applies queue.min_free_space at once, both ways: README says
// only log, logs and admin wait for a restart. The queue kept the value
// it started with, so a raised one left mail accepted and /readyz ready
// while health said Sluice refuses new mail, and a lowered one left every
// message refused with 452 4.3.1 while health said all was well.
func TestReloadAppliesMinFreeSpace(t *testing.T) {
	f := newFixture(t, "queue: {min_free_space: 1000000GB}\n")
	if f.q.Accepting() == nil {
		t.Fatal("a queue whose disk is below min_free_space says it accepts mail")
	}
	f.q.Apply(f.reloaded(t, "queue: {min_free_space: 1KB}\n"))
	if err := f.q.Accepting(); err != nil {
		t.Errorf("after a reload lowered min_free_space under the free space: %v; want mail accepted", err)
	}
	env := &mail.Envelope{ID: mail.NewID(), From: "a@contoso.com", Rcpts: []mail.Recipient{{Addr: "b@contoso.com"}}}
	if err := f.q.Put(context.Background(), env, strings.NewReader("x\r\n")); err != nil {
		t.Errorf("Put after a reload lowered min_free_space: %v", err)
	}

	f.q.Apply(f.reloaded(t, "queue: {min_free_space: 1000000GB}\n"))
	if f.q.Accepting() == nil {
		t.Error("after a reload raised min_free_space above the free space the queue still accepts mail")
	}
	env = &mail.Envelope{ID: mail.NewID(), From: "a@contoso.com", Rcpts: []mail.Recipient{{Addr: "b@contoso.com"}}}
	err := f.q.Put(context.Background(), env, strings.NewReader("x\r\n"))
	if r, ok := reply.As(err); !ok || r != reply.StoreFull {
		t.Errorf("Put after a reload raised min_free_space: %v; want %v", err, reply.StoreFull)
	}
}
