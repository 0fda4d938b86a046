// Package storetest is the conformance suite every queue.Store backend
// passes, in the manner of testing/fstest: storetest.Run(t, open).
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
)

// Opener opens the store kept in dir; Run calls it again on the same dir
// to check what survives a close (and, with reopen after a crash, a kill).
type Opener func(t *testing.T, dir string) queue.Store

// Run checks a Store backend.
func Run(t *testing.T, open Opener) {
	t.Run("AddBodyLoad", func(t *testing.T) { testAddBodyLoad(t, open) })
	t.Run("UpdateDelete", func(t *testing.T) { testUpdateDelete(t, open) })
	t.Run("LargeBody", func(t *testing.T) { testLargeBody(t, open) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open) })
	t.Run("FailedBody", func(t *testing.T) { testFailedBody(t, open) })
}

func testAddBodyLoad(t *testing.T, open Opener) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	ids := []mail.ID{mail.NewID(), mail.NewID(), mail.NewID()}
	for i, id := range ids {
		n, err := s.Add(ctx, id, []byte(fmt.Sprintf("meta %d", i)), bytes.NewReader([]byte(fmt.Sprintf("body %d\r\n", i))))
		if err != nil || n != 8 {
			t.Fatalf("Add: %d, %v", n, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	var got []string
	err := s.Load(ctx, func(id mail.ID, meta []byte, size int64) error {
		got = append(got, fmt.Sprintf("%s=%s/%d", id, meta, size))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("[%s=meta 0/8 %s=meta 1/8 %s=meta 2/8]", ids[0], ids[1], ids[2])
	if fmt.Sprint(got) != want {
		t.Fatalf("after reopen Load gave %v, want %v", got, want)
	}
	b := readBody(t, s, ids[1])
	if string(b) != "body 1\r\n" {
		t.Fatalf("Body = %q", b)
	}
	if _, err := s.Body(ctx, mail.NewID()); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Body of an unknown id: %v, want ErrNotFound", err)
	}
}

func testUpdateDelete(t *testing.T, open Opener) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	a, b := mail.NewID(), mail.NewID()
	for _, id := range []mail.ID{a, b} {
		if _, err := s.Add(ctx, id, []byte("v1"), bytes.NewReader([]byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Update(ctx, a, []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, b, []byte("v3")); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Update of a deleted message: %v, want ErrNotFound", err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	var got []string
	s.Load(ctx, func(id mail.ID, meta []byte, _ int64) error {
		got = append(got, string(id)+"="+string(meta))
		return nil
	})
	if fmt.Sprint(got) != fmt.Sprintf("[%s=v2]", a) {
		t.Fatalf("after update, delete and reopen: %v", got)
	}
	if _, err := s.Body(ctx, b); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("content of a deleted message: %v", err)
	}
}

func testLargeBody(t *testing.T, open Opener) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	big := make([]byte, 5<<20+17)
	rand.Read(big)
	id := mail.NewID()
	n, err := s.Add(ctx, id, []byte("m"), bytes.NewReader(big))
	if err != nil || n != int64(len(big)) {
		t.Fatalf("Add of 5 MB: %d, %v", n, err)
	}
	s.Close()
	s = open(t, dir)
	var size int64
	s.Load(ctx, func(_ mail.ID, _ []byte, n int64) error { size = n; return nil })
	if size != int64(len(big)) {
		t.Errorf("Load reports size %d, want %d", size, len(big))
	}
	if got := readBody(t, s, id); !bytes.Equal(got, big) {
		t.Fatalf("5 MB content differs after reopen (%d bytes)", len(got))
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func testConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := 0; g < 20; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				id := mail.NewID()
				content := bytes.Repeat([]byte{byte(i)}, 10240)
				if _, err := s.Add(ctx, id, []byte("m"), bytes.NewReader(content)); err != nil {
					errs <- err
					return
				}
				if got, err := body(s, id); err != nil {
					errs <- err
				} else if !bytes.Equal(got, content) {
					errs <- fmt.Errorf("content of %s differs", id)
				}
				if err := s.Delete(ctx, id); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	s.Load(ctx, func(mail.ID, []byte, int64) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d messages left after deleting all", n)
	}
}

// testFailedBody: a body that fails to read must leave nothing behind.
func testFailedBody(t *testing.T, open Opener) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	broken := io.MultiReader(bytes.NewReader(make([]byte, 2<<20)), errReader{})
	if _, err := s.Add(ctx, mail.NewID(), []byte("m"), broken); err == nil {
		t.Fatal("Add succeeded with a body that failed")
	}
	if _, err := s.Add(ctx, mail.NewID(), []byte("m"), errReader{}); err == nil {
		t.Fatal("Add succeeded with a body that failed")
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	n := 0
	s.Load(ctx, func(mail.ID, []byte, int64) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d messages stored from failed bodies", n)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("client went away") }

func readBody(t *testing.T, s queue.Store, id mail.ID) []byte {
	t.Helper()
	b, err := body(s, id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// body reads a content; for goroutines, which may not call t.Fatal.
func body(s queue.Store, id mail.ID) ([]byte, error) {
	r, err := s.Body(context.Background(), id)
	if err != nil {
		return nil, fmt.Errorf("Body(%s): %w", id, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("Body(%s): %w", id, err)
	}
	return b, nil
}
