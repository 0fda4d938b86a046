package dirlock

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
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

// recordSleeps records Acquire's sleeps without sleeping, calling each
// with the number of sleeps so far, and lets it wait up to wait.
func recordSleeps(t *testing.T, wait time.Duration, each func(n int)) *[]time.Duration {
	var slept []time.Duration
	oldWait, oldSleep := lockWait, sleep
	lockWait = wait
	sleep = func(d time.Duration) {
		slept = append(slept, d)
		if each != nil {
			each(len(slept))
		}
	}
	t.Cleanup(func() { lockWait, sleep = oldWait, oldSleep })
	return &slept
}

// A lock held at first is waited for: on Windows one let go of by a
// process that just ended may still be held for a moment.
func TestAcquireWaitsForRelease(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	slept := recordSleeps(t, time.Second, func(n int) {
		if n == 2 {
			l.Release()
		}
	})
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire of a lock released after two sleeps: %v", err)
	}
	l2.Release()
	if len(*slept) != 2 {
		t.Errorf("Acquire slept %v, want twice", *slept)
	}
}

// A lock that stays held is reported held after lockWait.
func TestAcquireGivesUpAfterWait(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	slept := recordSleeps(t, time.Second, nil)
	if _, err := Acquire(dir); !errors.Is(err, ErrHeld) {
		t.Fatalf("second Acquire: %v, want ErrHeld", err)
	}
	var total time.Duration
	for _, d := range *slept {
		total += d
	}
	if total != time.Second {
		t.Errorf("Acquire slept %v in all (%v), want %v", total, *slept, time.Second)
	}
}
