package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

// manCmd writes the man pages, one per command (wslmtu.1, wslmtu-fix.1, …),
// from the command tree itself, so they cannot drift from --help. The
// packages run it at build time; it is hidden because users read the
// result with man.
func (c *cli) manCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write the man pages, one per command, to DIR",
		Long:   "Write the man pages, one per command, to DIR. SOURCE_DATE_EPOCH sets their date.",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			forMarkdown(root)
			header := &doc.GenManHeader{Section: "1", Source: "wslmtu " + c.version(), Manual: "wslmtu manual"}
			if err := doc.GenManTree(root, header, args[0]); err != nil {
				return failureErr(err)
			}
			return nil
		},
	}
}

// forMarkdown rewrites the help texts of the tree (built for this one run)
// into the markdown cobra's man generator reads: --help's plain text would
// lose its indented lists to paragraph filling and read "wg*,wt*" as
// emphasis.
func forMarkdown(cmd *cobra.Command) {
	// cobra's own completion commands come with markdown texts.
	if !isCompletionCmd(cmd) {
		cmd.Long = markdownText(cmd.Long)
	}
	escape := func(f *pflag.Flag) {
		f.Usage = markdownEscape(f.Usage)
		if f.Value.Type() != "string" { // string defaults are printed quoted, escapes and all
			f.DefValue = markdownEscape(f.DefValue)
		}
	}
	cmd.LocalFlags().VisitAll(escape)
	for _, sub := range cmd.Commands() {
		forMarkdown(sub)
	}
}

func isCompletionCmd(cmd *cobra.Command) bool {
	for ; cmd.HasParent(); cmd = cmd.Parent() {
		if cmd.Name() == "completion" && !cmd.Parent().HasParent() {
			return true
		}
	}
	return false
}

// markdownText turns plain help text into markdown: indented lines (lists,
// examples) become literal blocks, everything else is escaped text.
func markdownText(s string) string {
	var out []string
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); {
		if !indented(lines[i]) {
			out = append(out, markdownEscape(lines[i]))
			i++
			continue
		}
		j := i
		for j < len(lines) && (indented(lines[j]) || strings.TrimSpace(lines[j]) == "" && j+1 < len(lines) && indented(lines[j+1])) {
			j++
		}
		block := lines[i:j]
		strip := -1
		for _, l := range block {
			if strings.TrimSpace(l) == "" {
				continue
			}
			n := len(expandTabs(l)) - len(strings.TrimLeft(expandTabs(l), " "))
			if strip < 0 || n < strip {
				strip = n
			}
		}
		if len(out) > 0 && out[len(out)-1] != "" {
			out = append(out, "")
		}
		for _, l := range block {
			l = expandTabs(l)
			if len(l) >= strip {
				l = l[strip:]
			}
			out = append(out, strings.TrimRight("    "+l, " "))
		}
		out = append(out, "")
		i = j
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n")
}

func indented(l string) bool {
	return strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")
}

func expandTabs(l string) string {
	rest := strings.TrimLeft(l, " \t")
	lead := strings.ReplaceAll(l[:len(l)-len(rest)], "\t", "    ")
	return lead + rest
}

// markdownEscape keeps markdown from reading text as emphasis, HTML, links
// or headings. Backquoted `commands` stay code spans.
func markdownEscape(s string) string {
	var b strings.Builder
	code := false
	for i, r := range s {
		switch {
		case r == '`':
			code = !code
		case code:
		case strings.ContainsRune(`\*_[]<>`, r):
			b.WriteByte('\\')
		case i == 0 && strings.ContainsRune("#-+", r):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
