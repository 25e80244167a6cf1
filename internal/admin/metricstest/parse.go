// Package metricstest checks Prometheus text exposition in tests: a strict
// parser of the subset admin.WriteMetrics emits, and a wrapper around
// `promtool check metrics`. Only tests import it; no program links it.
package metricstest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

var (
	metricName  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	sampleLine  = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$`)
	labelPair   = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)`)
	metricTypes = map[string]bool{"counter": true, "gauge": true, "histogram": true, "summary": true, "untyped": true}
)

// Family is what the HELP and TYPE lines said about one metric family.
type Family struct {
	Help, Type string
	// Samples counts the family's sample lines.
	Samples int
}

// Exposition is parsed Prometheus text.
type Exposition struct {
	// Samples holds every sample keyed by its series as written, e.g.
	// `mcast_groups{interface="eth0",family="ipv4"}`.
	Samples map[string]float64
	// Families holds every family with a TYPE line, by name.
	Families map[string]*Family
	// Order lists the families in the order of their TYPE lines.
	Order []string
}

// Parse checks that text is valid Prometheus text exposition (HELP and
// TYPE lines, samples with optional labels, no timestamps), stricter than
// the format demands in what WriteMetrics promises: every family has one
// HELP and one TYPE line before its samples, its samples are contiguous,
// and no series appears twice.
func Parse(text []byte) (*Exposition, error) {
	x := &Exposition{Samples: map[string]float64{}, Families: map[string]*Family{}}
	helps := map[string]string{}
	current := "" // the family whose samples may follow
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "# HELP "):
			name, help, _ := strings.Cut(line[len("# HELP "):], " ")
			if !metricName.MatchString(name) {
				return nil, fmt.Errorf("line %d: bad metric name in HELP: %q", n, line)
			}
			if _, dup := helps[name]; dup {
				return nil, fmt.Errorf("line %d: second HELP for %s", n, name)
			}
			helps[name] = help
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line[len("# TYPE "):])
			if len(f) != 2 || !metricName.MatchString(f[0]) || !metricTypes[f[1]] {
				return nil, fmt.Errorf("line %d: bad TYPE line: %q", n, line)
			}
			if _, dup := x.Families[f[0]]; dup {
				return nil, fmt.Errorf("line %d: second TYPE for %s", n, f[0])
			}
			help, ok := helps[f[0]]
			if !ok {
				return nil, fmt.Errorf("line %d: TYPE of %s without a HELP line before it", n, f[0])
			}
			x.Families[f[0]] = &Family{Help: help, Type: f[1]}
			x.Order = append(x.Order, f[0])
			current = f[0]
		case strings.HasPrefix(line, "#"):
			continue
		default:
			m := sampleLine.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("line %d: bad sample: %q", n, line)
			}
			for rest := m[3]; rest != ""; {
				lm := labelPair.FindStringSubmatch(rest)
				if lm == nil {
					return nil, fmt.Errorf("line %d: bad labels: %q", n, line)
				}
				rest = rest[len(lm[0]):]
			}
			fam, ok := x.Families[m[1]]
			if !ok {
				return nil, fmt.Errorf("line %d: sample of %s before its TYPE line", n, m[1])
			}
			if m[1] != current {
				return nil, fmt.Errorf("line %d: sample of %s after family %s began", n, m[1], current)
			}
			v, err := strconv.ParseFloat(m[4], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: bad value: %q", n, line)
			}
			key := m[1] + m[2]
			if _, dup := x.Samples[key]; dup {
				return nil, fmt.Errorf("line %d: duplicate series %s", n, key)
			}
			x.Samples[key] = v
			fam.Samples++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return x, nil
}

// ErrNoPromtool is returned by Promtool when no promtool is on PATH.
var ErrNoPromtool = errors.New("promtool not found on PATH (Debian package prometheus; " +
	"scripts/install-test-deps.sh extracts it to /usr/local/bin when run as root)")

// Promtool runs `promtool check metrics` on text. It returns the tool's
// output and an error when the tool reports a problem (it exits nonzero on
// a parse error or a lint finding) or cannot run; ErrNoPromtool when the
// tool is not installed.
func Promtool(text []byte) (string, error) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		return "", ErrNoPromtool
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("promtool check metrics: %w: %s", err, out)
	}
	return string(out), nil
}
