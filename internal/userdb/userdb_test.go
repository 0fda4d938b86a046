package userdb

import (
	"context"
	"errors"
	"testing"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/password"
)

// An unknown name must cost what a wrong password costs: when it is
// answered without hashing, the time an AUTH takes tells an attacker
// which login names exist (ErrInvalid hides it only in the reply). With
// every hashing slot taken, both wait for one.
func TestUnknownUserHashesLikeWrongPassword(t *testing.T) {
	h, err := password.Hash("right")
	if err != nil {
		t.Fatal(err)
	}
	db := New([]config.User{{Name: "app@contoso.com", PasswordHash: h}})
	if _, err := db.Authenticate(context.Background(), "APP@contoso.com", "right"); err != nil {
		t.Fatalf("right password: %v", err)
	}
	for range cap(db.hashing) {
		db.hashing <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, name := range []string{"app@contoso.com", "nobody@contoso.com"} {
		if _, err := db.Authenticate(ctx, name, "wrong"); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a wrong password while all hashing slots are busy: %v, want it to wait for a slot like any login", name, err)
		}
	}
	for range cap(db.hashing) {
		<-db.hashing
	}
	for _, name := range []string{"app@contoso.com", "nobody@contoso.com"} {
		if _, err := db.Authenticate(context.Background(), name, "wrong"); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s with a wrong password: %v, want ErrInvalid", name, err)
		}
	}
}
