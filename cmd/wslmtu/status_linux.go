package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func init() {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the environment, interfaces, tunnels, the plan, and whether all is healthy",
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
			r, err := host.Plan(cfg)
			if err != nil {
				return classify(err)
			}
			out := cmd.OutOrStdout()
			healthy := r.Healthy() || r.Plan.Refused != ""
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					Healthy bool        `json:"healthy"`
					Report  interface{} `json:"report"`
				}{healthy, r}); err != nil {
					return failureErr(err)
				}
			} else {
				fmt.Fprint(out, r)
				if healthy {
					fmt.Fprintln(out, "healthy")
				} else {
					fmt.Fprintln(out, "unhealthy: run `wslmtu fix` to apply the plan (or install the agent to keep it applied)")
				}
			}
			if !healthy {
				return &exitError{code: exitUnhealthy, err: fmt.Errorf("the plan is not empty")}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	rootCmd.AddCommand(cmd)
}
