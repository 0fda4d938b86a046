// Package cli is Sluice's command line: a table of commands, each with its
// usage and help text, flags parsed with the standard library, and exit
// codes 0 (ok), 1 (failure) and 2 (usage). Only cli calls os.Exit, via
// cmd/sluice.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"strings"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// env is what a command may touch.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// command is one entry of the command table.
type command struct {
	name  string // words after "sluice", e.g. "config check"
	args  string // synopsis of the arguments, e.g. "[-config FILE]"
	short string // one line for the command list
	long  string // what it does, for --help
	flags func(fs *flag.FlagSet) func(e *env, args []string) (int, error)
}

var commands []*command

func register(c *command) { commands = append(commands, c) }

// Run runs the command line args (without the program name) and returns
// the exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) > 1 {
			if c, _ := find(args[1:]); c != nil {
				printHelp(stdout, c, nil)
				return ExitOK
			}
			fmt.Fprintf(stderr, "sluice help: no command %q; the commands are:\n", strings.Join(args[1:], " "))
			usage(stderr)
			return ExitUsage
		}
		usage(stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	c, rest := find(args)
	if c == nil {
		if subs := subcommands(args[0]); len(subs) > 0 {
			fmt.Fprintf(stderr, "sluice %s: give one of %s (e.g. sluice %s %s)\n", args[0], strings.Join(subs, ", "), args[0], subs[0])
			return ExitUsage
		}
		fmt.Fprintf(stderr, "sluice: unknown command %q; run 'sluice help' for the list\n", strings.Join(args, " "))
		return ExitUsage
	}
	fs := flag.NewFlagSet("sluice "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	run := c.flags(fs)
	positional, err := parseInterleaved(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout, c, fs)
			return ExitOK
		}
		fmt.Fprintf(stderr, "sluice %s: %v\n", c.name, err)
		fmt.Fprintf(stderr, "usage: sluice %s %s (see sluice %s --help)\n", c.name, c.args, c.name)
		return ExitUsage
	}
	code, err := run(e, positional)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "sluice %s: %v\nusage: sluice %s %s\n", c.name, err, c.name, c.args)
			return ExitUsage
		}
		fmt.Fprintf(stderr, "sluice: %s: %v\n", c.name, err)
		if code == ExitOK {
			code = ExitFailure
		}
	}
	return code
}

// usageError marks a wrong command line (exit 2).
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// find picks the command whose name matches the most leading words.
// subcommands lists the second words of the commands in group (queue:
// list, show, ...), for a group typed without one.
func subcommands(group string) []string {
	var subs []string
	for _, c := range commands {
		if g, sub, ok := strings.Cut(c.name, " "); ok && g == group {
			subs = append(subs, sub)
		}
	}
	return subs
}

func find(args []string) (*command, []string) {
	var best *command
	bestN := 0
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(words) > len(args) || len(words) <= bestN {
			continue
		}
		match := true
		for i, w := range words {
			if args[i] != w {
				match = false
				break
			}
		}
		if match {
			best, bestN = c, len(words)
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, args[bestN:]
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Sluice: an SMTP relay and transport gateway.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: sluice COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.short)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'sluice COMMAND --help' for a command's flags and details.")
}

func printHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: sluice %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.long))
	if fs == nil {
		fs = flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.flags(fs)
	}
	has := false
	fs.VisitAll(func(*flag.Flag) { has = true })
	if has {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// parseInterleaved parses flags wherever they stand among the arguments,
// so "sluice message remove ID --bounce" works as admins type it.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}
