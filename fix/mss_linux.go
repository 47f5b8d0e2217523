package fix

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// xtablesWait bounds how long a command waits for another program's xtables
// lock, so a stuck firewall tool delays a reconcile instead of hanging it.
const xtablesWait = 10

// OpenNetfilter opens the MSS applier through the iptables binaries of a
// backend; BackendAuto uses the backend that already holds rules (rules in
// the other one would be invisible next to them), else the default iptables.
// The commands run in the network namespace of the calling OS thread.
func OpenNetfilter(prefer Backend) (*Netfilter, error) {
	backend, why := prefer, "forced"
	if prefer == BackendAuto {
		var err error
		backend, why, err = chooseBackend()
		if err != nil {
			return nil, err
		}
	}
	n := &Netfilter{Backend: backend, Why: why, Tables: map[Family]IPTables{}, Missing: map[Family]string{}}
	var problems []string
	for _, f := range Families {
		ipt, err := openFamily(backend, f)
		if err != nil {
			n.Missing[f] = err.Error()
			problems = append(problems, err.Error())
			continue
		}
		n.Tables[f] = ipt
	}
	if len(n.Tables) == 0 {
		return nil, Unavailable(strings.Join(problems, "; "))
	}
	return n, nil
}

// chooseBackend looks for rules in each backend's save output; saving does
// not create tables, so looking leaves no trace.
func chooseBackend() (Backend, string, error) {
	legacy := hasRules("iptables-legacy-save") || hasRules("ip6tables-legacy-save")
	nft := hasRules("iptables-nft-save") || hasRules("ip6tables-nft-save")
	switch {
	case legacy && !nft:
		return BackendLegacy, "iptables-legacy already holds rules", nil
	case nft && !legacy:
		return BackendNFT, "iptables-nft already holds rules", nil
	}
	path, err := exec.LookPath("iptables")
	if err != nil {
		return "", "", Unavailable("iptables is not installed (apt install iptables)")
	}
	mode, err := backendOf(path)
	if err != nil {
		return "", "", Unavailable(err.Error())
	}
	if legacy && nft {
		return mode, "both backends hold rules; the default iptables", nil
	}
	return mode, "no rules in either backend; the default iptables", nil
}

func hasRules(save string) bool {
	path, err := exec.LookPath(save)
	if err != nil {
		return false
	}
	out, err := exec.Command(path).Output()
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "-A ") {
			return true
		}
	}
	return false
}

// backendOf reads the mode from `iptables --version`: "(nf_tables)" or "(legacy)".
func backendOf(path string) (Backend, error) {
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", path, err)
	}
	switch {
	case bytes.Contains(out, []byte("nf_tables")):
		return BackendNFT, nil
	case bytes.Contains(out, []byte("legacy")):
		return BackendLegacy, nil
	}
	// iptables before 1.8 had only the legacy backend and did not say so.
	return BackendLegacy, nil
}

// openFamily finds the binary of the backend: the suffixed name first
// (iptables-nft), then the plain one if that is the same backend.
func openFamily(backend Backend, f Family) (IPTables, error) {
	proto := iptables.ProtocolIPv4
	if f == IPv6 {
		proto = iptables.ProtocolIPv6
	}
	var tried []string
	for _, name := range []string{f.Tool() + "-" + string(backend), f.Tool()} {
		path, err := exec.LookPath(name)
		if err != nil {
			tried = append(tried, name+" not found")
			continue
		}
		mode, err := backendOf(path)
		if err != nil {
			tried = append(tried, err.Error())
			continue
		}
		if mode != backend {
			tried = append(tried, fmt.Sprintf("%s is %s", name, mode))
			continue
		}
		ipt, err := iptables.New(iptables.IPFamily(proto), iptables.Path(path), iptables.Timeout(xtablesWait))
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		return ipt, nil
	}
	return nil, fmt.Errorf("no %s for the %s backend (%s)", f.Tool(), backend, strings.Join(tried, ", "))
}
