package buildcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakeGo writes a `go` command that fuzz.sh finds first on PATH. Each call
// appends its arguments to calls.log and replies with the next of replies
// (exit code and output), repeating the last one.
func fakeGo(t *testing.T, replies ...string) (dir string) {
	t.Helper()
	dir = t.TempDir()
	var cases strings.Builder
	for i, r := range replies {
		code, out, _ := strings.Cut(r, " ")
		pat := "*"
		if i < len(replies)-1 {
			pat = string(rune('1' + i))
		}
		cases.WriteString(pat + ") printf '%s\\n' '" + out + "'; exit " + code + ";;\n")
	}
	script := "#!/usr/bin/env bash\n" +
		"echo \"$*\" >>" + filepath.Join(dir, "calls.log") + "\n" +
		"n=$(wc -l <" + filepath.Join(dir, "calls.log") + ")\n" +
		"case $n in\n" + cases.String() + "esac\n"
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runFuzzScript runs scripts/fuzz.sh on a package with one fuzz target,
// with the fake go first on PATH.
func runFuzzScript(t *testing.T, goDir string) (string, error) {
	t.Helper()
	pkg := t.TempDir()
	if err := os.WriteFile(filepath.Join(pkg, "x_test.go"), []byte("package x\n\nfunc FuzzThing(f *testing.F) {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "../../scripts/fuzz.sh", "100x", pkg)
	cmd.Env = append(os.Environ(), "PATH="+goDir+":"+os.Getenv("PATH"), "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func calls(t *testing.T, dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "calls.log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// The Go 1.26 coordinator race (golang/go#75804) reports "context deadline
// exceeded" with no failing input: fuzz.sh runs the target again instead
// of failing CI.
func TestFuzzScriptRetriesCoordinatorRace(t *testing.T) {
	dir := fakeGo(t,
		"1 --- FAIL: FuzzThing (4.09s) context deadline exceeded",
		"0 ok")
	out, err := runFuzzScript(t, dir)
	if err != nil {
		t.Fatalf("fuzz.sh failed on the spurious deadline error: %v\n%s", err, out)
	}
	if n := calls(t, dir); n != 2 {
		t.Fatalf("go ran %d times, want 2 (one retry)\n%s", n, out)
	}
}

// A real finding fails the run at once, without a retry.
func TestFuzzScriptFailsOnFinding(t *testing.T) {
	dir := fakeGo(t,
		"1 --- FAIL: FuzzThing context deadline exceeded Failing input written to testdata/fuzz/FuzzThing/abc",
		"0 ok")
	out, err := runFuzzScript(t, dir)
	if err == nil {
		t.Fatalf("fuzz.sh passed despite a failing input\n%s", out)
	}
	if n := calls(t, dir); n != 1 {
		t.Fatalf("go ran %d times, want 1", n)
	}
}

// Twice the spurious error is not retried forever: the second failure is
// reported.
func TestFuzzScriptRetriesOnce(t *testing.T) {
	dir := fakeGo(t, "1 context deadline exceeded")
	if out, err := runFuzzScript(t, dir); err == nil {
		t.Fatalf("fuzz.sh passed after two failures\n%s", out)
	}
	if n := calls(t, dir); n != 2 {
		t.Fatalf("go ran %d times, want 2", n)
	}
}

// make test's fuzz budget is a count: a duration budget hits the
// coordinator race under load.
func TestShortFuzzBudgetIsACount(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^SHORTFUZZ \?= (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("Makefile sets no SHORTFUZZ")
	}
	if !regexp.MustCompile(`^[0-9]+x$`).Match(m[1]) {
		t.Fatalf("SHORTFUZZ = %s, want an execution count such as 20000x", m[1])
	}
	if !regexp.MustCompile(`(?m)^test:.*\bstaticcheck\b`).Match(b) {
		t.Fatal("make test does not run staticcheck")
	}
}
