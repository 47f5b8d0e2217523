package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/internal/config"
)

// configTable is the README's configuration table, from config.Keys.
func configTable() string {
	var b strings.Builder
	def := config.Default()
	for _, k := range config.Keys {
		if k.Type == config.TypeTables {
			fmt.Fprintf(&b, "| `[[%s]]` | none | none | %s |\n", k.Name, k.Usage)
			continue
		}
		fmt.Fprintf(&b, "| `%s` | `--%s` | `%s` | %s |\n", k.Name, k.Flag(), def.Value(k.Name), k.Usage)
	}
	return b.String()
}

// The README's configuration table says what the code says: every key, its
// flag, its default and its usage, in the order of config.Keys.
func TestREADMEConfigTable(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const header = "| key | flag | default | meaning |\n|---|---|---|---|\n"
	readme := string(data)
	i := strings.Index(readme, header)
	if i < 0 {
		t.Fatalf("README.md has no configuration table starting with\n%s", header)
	}
	rest := readme[i+len(header):]
	got := rest[:strings.Index(rest, "\n\n")+1]
	if want := configTable(); got != want {
		t.Errorf("README.md's configuration table differs from config.Keys; it should read:\n%s", want)
	}
}
