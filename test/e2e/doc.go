// Package e2e holds Sluice's end-to-end tests: they build ./cmd/sluice once,
// start the real binary per test with a config written into the test's
// temporary directory, and drive it with the clients administrators point
// at it — swaks, Python's smtplib and curl — plus a raw socket where a test
// needs bytes no well-behaved client sends (SMTP smuggling).
//
// The harness follows maddy's tests/t.go: one process per test, free ports
// picked by the test, readiness by polling for the 220 banner, SIGTERM on
// cleanup, the daemon's log shown with a failing test. Nothing waits by
// sleeping; every wait polls with a deadline, and no test asserts a
// duration. On Windows, which cannot send SIGTERM or SIGHUP, the tests
// that run sluice serve skip; those that run one command do not.
//
// Set SLUICE_E2E_BINARY to run the suite against a binary built elsewhere
// instead of building ./cmd/sluice.
package e2e
