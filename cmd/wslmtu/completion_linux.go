package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"

	"github.com/wslmtu/wslmtu/internal/config"
)

func hostEnv() env { return env{version: version, interfaces: linkNames} }

// linkNames lists this host's interfaces through netlink.
func linkNames() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return names, nil
}

// completeKey completes a config key's flag value: the allowed values where
// the config package lists them, interface names where one is asked for,
// directories or files for paths, and nothing for numbers and booleans.
func (c *cli) completeKey(k config.Key) cobra.CompletionFunc {
	switch k.Name {
	case "mtu_strategy":
		return fixed(config.Strategies)
	case "outer_scope":
		return fixed(config.Scopes)
	case "log_format":
		return fixed(config.LogFormats)
	case "outer_interface":
		return c.completeInterfaces(false)
	case "tunnels":
		return c.completeInterfaces(true)
	case "state_dir":
		return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveFilterDirs
		}
	}
	switch k.Type {
	case config.TypeInt, config.TypeBool:
		return cobra.NoFileCompletions
	}
	return nil // file names
}

func fixed[T ~string](values []T) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		out := make([]cobra.Completion, len(values))
		for i, v := range values {
			out[i] = string(v)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeInterfaces offers the host's interface names; for a list flag
// (--tunnels a,b) it completes the item after the last comma.
func (c *cli) completeInterfaces(list bool) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if c.env.interfaces == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names, err := c.env.interfaces()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		prefix := ""
		if i := strings.LastIndexByte(toComplete, ','); list && i >= 0 {
			prefix = toComplete[:i+1]
		}
		var out []cobra.Completion
		for _, n := range names {
			if n != "lo" {
				out = append(out, prefix+n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
