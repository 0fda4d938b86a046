package dirlock

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// A held lock refuses a second Acquire (flock is per open file, so this
// holds inside one process too), says who holds it, and is free again
// once released.
func TestAcquireRefusesSecond(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir)
	if !errors.Is(err, ErrHeld) {
		t.Fatalf("second Acquire: %v, want ErrHeld", err)
	}
	for _, want := range []string{dir, "pid " + strconv.Itoa(os.Getpid()), "node.data_dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("second Acquire says %q, want it to name %q", err, want)
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
}

// A data directory that does not exist yet is made.
func TestAcquireMakesDir(t *testing.T) {
	dir := t.TempDir() + "/data/node"
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if _, err := os.Stat(dir + "/" + Name); err != nil {
		t.Error(err)
	}
}
