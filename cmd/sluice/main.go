// Command sluice is the Sluice SMTP relay; see 'sluice help'.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluice-relay/sluice/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal starts a graceful stop, which may wait minutes for
	// a slow client's DATA; a second one ends the process at once, by the
	// signal's default action. What got a 250 is on disk already.
	context.AfterFunc(ctx, stop)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
