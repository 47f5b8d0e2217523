package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Mark is the symbol a status is printed with.
func (s Status) Mark() string {
	switch s {
	case OK:
		return "✓"
	case Fail:
		return "✗"
	case Warn:
		return "!"
	}
	return "-"
}

// String renders one check: the mark, the name and the first detail line,
// further detail lines indented, and the remedy of a failure or warning
// after an arrow.
func (c Check) String() string {
	var b strings.Builder
	lines := strings.Split(c.Detail, "\n")
	fmt.Fprintf(&b, "%s %s: %s\n", c.Status.Mark(), c.Name, lines[0])
	for _, l := range lines[1:] {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	if c.Remedy != "" && (c.Status == Fail || c.Status == Warn) {
		fmt.Fprintf(&b, "  → %s\n", c.Remedy)
	}
	return b.String()
}

// WriteText prints the checks and a closing verdict.
func WriteText(w io.Writer, checks []Check) error {
	var b strings.Builder
	for _, c := range checks {
		b.WriteString(c.String())
	}
	switch n := Failed(checks); n {
	case 0:
		b.WriteString("healthy: no check failed\n")
	case 1:
		b.WriteString("unhealthy: 1 check failed\n")
	default:
		fmt.Fprintf(&b, "unhealthy: %d checks failed\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Result is the JSON document of one doctor run.
type Result struct {
	Healthy bool    `json:"healthy"`
	Checks  []Check `json:"checks"`
}

// WriteJSON prints the checks as one indented JSON object.
func WriteJSON(w io.Writer, checks []Check) error {
	if checks == nil {
		checks = []Check{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(Result{Healthy: Healthy(checks), Checks: checks})
}
