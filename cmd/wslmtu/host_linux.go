package main

import (
	"errors"

	"github.com/vishvananda/netlink"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
)

// openHost gives the fix.Host of this machine; close it when done.
func openHost(cfg config.Config) (fix.Host, func(), error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return fix.Host{}, nil, failureErr(err)
	}
	return fix.HostAt(h, detect.HostSources(), cfg.StateDir), h.Close, nil
}

// classify gives bad input (a named interface that does not exist) the usage
// exit code and everything else the failure one.
func classify(err error) error {
	var notFound *detect.NotFoundError
	if errors.As(err, &notFound) {
		return usageErr(err)
	}
	return failureErr(err)
}
