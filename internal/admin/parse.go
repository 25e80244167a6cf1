package admin

import (
	"bufio"
	"bytes"
	"fmt"
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

// ParseMetrics checks that text is valid Prometheus text exposition (the
// subset WriteMetrics emits: HELP and TYPE lines, samples with optional
// labels, no timestamps) and returns every sample keyed by its series as
// written, e.g. `mcast_groups{interface="eth0",family="ipv4"}`.
func ParseMetrics(text []byte) (map[string]float64, error) {
	out := map[string]float64{}
	typed := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "# HELP "):
			f := strings.SplitN(line[len("# HELP "):], " ", 2)
			if !metricName.MatchString(f[0]) {
				return nil, fmt.Errorf("line %d: bad metric name in HELP: %q", n, line)
			}
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line[len("# TYPE "):])
			if len(f) != 2 || !metricName.MatchString(f[0]) || !metricTypes[f[1]] {
				return nil, fmt.Errorf("line %d: bad TYPE line: %q", n, line)
			}
			if _, dup := typed[f[0]]; dup {
				return nil, fmt.Errorf("line %d: second TYPE for %s", n, f[0])
			}
			typed[f[0]] = f[1]
		case strings.HasPrefix(line, "#"):
			continue
		default:
			m := sampleLine.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("line %d: bad sample: %q", n, line)
			}
			if rest := m[3]; rest != "" {
				for rest != "" {
					lm := labelPair.FindStringSubmatch(rest)
					if lm == nil {
						return nil, fmt.Errorf("line %d: bad labels: %q", n, line)
					}
					rest = rest[len(lm[0]):]
				}
			}
			if _, ok := typed[m[1]]; !ok {
				return nil, fmt.Errorf("line %d: sample of %s before its TYPE line", n, m[1])
			}
			v, err := strconv.ParseFloat(m[4], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: bad value: %q", n, line)
			}
			key := m[1] + m[2]
			if _, dup := out[key]; dup {
				return nil, fmt.Errorf("line %d: duplicate series %s", n, key)
			}
			out[key] = v
		}
	}
	return out, sc.Err()
}
