package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Set once by TestMain, read-only afterwards.
var (
	// sluiceBin is the binary under test.
	sluiceBin string
	// testHash is the argon2id hash of testPassword, made once with
	// `sluice user hash`: argon2 is slow on purpose, and every test with
	// users needs one.
	testHash string
)

const testPassword = "S3cret pass, with spaces & symbols!" // ASCII: smtplib encodes AUTH responses as ASCII

func TestMain(m *testing.M) { os.Exit(setupAndRun(m)) }

func setupAndRun(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if sluiceBin, err = build(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if testHash, err = hashPassword(testPassword); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// build compiles ./cmd/sluice into dir, or returns $SLUICE_E2E_BINARY.
func build(dir string) (string, error) {
	if bin := os.Getenv("SLUICE_E2E_BINARY"); bin != "" {
		return filepath.Abs(bin)
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(gomod)) == 0 {
		return "", fmt.Errorf("cannot find the module root (go env GOMOD): %v", err)
	}
	bin := filepath.Join(dir, "sluice")
	if runtime.GOOS == "windows" {
		bin += ".exe" // exec finds a program on Windows by its extension
	}
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sluice")
	cmd.Dir = filepath.Dir(string(bytes.TrimSpace(gomod)))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/sluice: %v\n%s", err, out)
	}
	return bin, nil
}

func hashPassword(pw string) (string, error) {
	cmd := exec.Command(sluiceBin, "user", "hash")
	cmd.Stdin = strings.NewReader(pw + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("sluice user hash: %v: %s", err, stderr.String())
	}
	h := strings.TrimSpace(string(out))
	if !strings.HasPrefix(h, "$argon2id$") {
		return "", fmt.Errorf("sluice user hash printed %q, want an argon2id hash", h)
	}
	return h, nil
}

// skipWithout skips the test when an external client is missing.
func skipWithout(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s is not installed; run scripts/install-test-deps (it installs swaks, curl and python3)", tool)
	}
	return p
}
