package main

import (
	"encoding/json"
	"io"
)

// printResult writes v as indented JSON with --json, else its text form:
// every command that has a --json flag prints through here.
func printResult(out io.Writer, asJSON bool, v any, text func(io.Writer)) error {
	if !asJSON {
		text(out)
		return nil
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return failureErr(err)
	}
	return nil
}
