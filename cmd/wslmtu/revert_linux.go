package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:   "revert",
		Short: "Put back every MTU wslmtu changed, remove its MSS rules, and clear the record",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			host, done, err := openHost(cfg)
			if err != nil {
				return err
			}
			defer done()
			reverted, err := host.Revert()
			out := cmd.OutOrStdout()
			for _, r := range reverted {
				fmt.Fprintln(out, r)
			}
			if err != nil {
				return failureErr(err)
			}
			if len(reverted) == 0 {
				fmt.Fprintln(out, "nothing to revert: wslmtu has changed nothing")
			}
			return nil
		},
	})
}
