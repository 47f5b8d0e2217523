package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wslmtu/wslmtu/internal/config"
)

// addConfigFlags gives every config key its flag (the key's name with '-'
// for '_', its usage from config.Keys, its default from config.Default), so
// a new key cannot lack one. [[tunnel]] tables have no flag. A flag given on
// the command line wins over the file.
func (c *cli) addConfigFlags(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringVar(&c.configPath, "config", config.DefaultPath, "config file (TOML); a missing file means defaults")
	_ = root.RegisterFlagCompletionFunc("config", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"toml"}, cobra.ShellCompDirectiveFilterFileExt
	})
	def := config.Default()
	for _, k := range config.Keys {
		name := k.Flag()
		if name == "" {
			continue
		}
		dv := defaultOf(def, k)
		switch k.Type {
		case config.TypeString:
			pf.String(name, dv.(string), k.Usage)
		case config.TypeInt:
			pf.Int(name, int(dv.(int64)), k.Usage)
		case config.TypeBool:
			pf.Bool(name, dv.(bool), k.Usage)
		case config.TypeList:
			var list []string
			for _, item := range dv.([]any) {
				list = append(list, item.(string))
			}
			pf.StringSlice(name, list, k.Usage)
		default:
			panic(fmt.Sprintf("config key %s: no flag type for %s", k.Name, k.Type))
		}
		if complete := c.completeKey(k); complete != nil {
			_ = root.RegisterFlagCompletionFunc(name, complete)
		}
	}
}

// defaultOf is a key's default as the TOML decoder reads it (string, int64,
// bool or []any): config renders values as TOML, and this reads them back
// the one way the config file is read too.
func defaultOf(def config.Config, k config.Key) any {
	var m map[string]any
	if _, err := toml.Decode(k.Name+" = "+def.Value(k.Name), &m); err != nil {
		panic(fmt.Sprintf("config key %s: default %s: %v", k.Name, def.Value(k.Name), err))
	}
	return m[k.Name]
}

// flagValue is the typed value of a key's flag, for config.Set.
func flagValue(fs *pflag.FlagSet, k config.Key) (any, error) {
	switch k.Type {
	case config.TypeString:
		return fs.GetString(k.Flag())
	case config.TypeInt:
		return fs.GetInt(k.Flag())
	case config.TypeBool:
		return fs.GetBool(k.Flag())
	case config.TypeList:
		return fs.GetStringSlice(k.Flag())
	}
	return nil, fmt.Errorf("config key %s has no flag", k.Name)
}

// changedKeys are the config keys whose flags were given.
func changedKeys(cmd *cobra.Command) []string {
	var keys []string
	for _, k := range config.Keys {
		if k.Flag() != "" && cmd.Flags().Changed(k.Flag()) {
			keys = append(keys, k.Name)
		}
	}
	return keys
}

// loadConfig reads the config file and lays the flags given on top.
func (c *cli) loadConfig(cmd *cobra.Command) (config.Config, error) {
	cfg, err := config.Load(c.configPath)
	if err != nil {
		return cfg, usageErr(err)
	}
	return overlayFlags(cmd, cfg)
}

// overlayFlags lays the flags given on the command line over cfg and
// validates the result; the agent calls it again after each config reload.
func overlayFlags(cmd *cobra.Command, cfg config.Config) (config.Config, error) {
	for _, key := range changedKeys(cmd) {
		k, _ := config.Lookup(key)
		v, err := flagValue(cmd.Flags(), k)
		if err == nil {
			err = cfg.Set(key, v)
		}
		if err != nil {
			return cfg, failureErr(err)
		}
	}
	if err := cfg.Validate(); err != nil {
		var fe *config.FieldError
		if !errors.As(err, &fe) {
			return cfg, usageErr(err)
		}
		// The file was valid on its own, so a flag made it invalid: name
		// the flag when it was given, else the key it clashes with.
		name := fe.Key
		if k, ok := config.Lookup(strings.SplitN(fe.Key, ".", 2)[0]); ok && k.Flag() != "" && cmd.Flags().Changed(k.Flag()) {
			name = "--" + k.Flag()
		}
		return cfg, usageErr(fmt.Errorf("%s: %s", name, fe.Msg))
	}
	return cfg, nil
}
