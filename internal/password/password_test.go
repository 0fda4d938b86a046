package password

import (
	"strings"
	"testing"
)

// A hash made here verifies; one whose parameters would have each login
// hold gigabytes is refused at load with what to do.
func TestCheckMemoryBound(t *testing.T) {
	h, err := Hash("s3cret-Passw0rd")
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(h); err != nil {
		t.Fatalf("CheckHash of a fresh hash: %v", err)
	}
	huge := strings.Replace(h, "m=19456,", "m=4194304,", 1)
	err = Check(huge)
	if err == nil || !strings.Contains(err.Error(), "4096 MiB per login") || !strings.Contains(err.Error(), "sluice user hash") {
		t.Errorf("CheckHash of a 4 GiB hash: %v, want it refused naming the memory and the fix", err)
	}
	if err := Check(strings.Replace(h, "m=19456,", "m=262144,", 1)); err != nil {
		t.Errorf("CheckHash of a 256 MiB hash: %v, want accepted", err)
	}
}
