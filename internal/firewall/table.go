package firewall

import (
	"encoding/json"
	"fmt"
	"strings"
)

// RemoveCreatedTable undoes the one trace our chains leave once deleted:
// the family's mangle table itself, when it did not exist before wslmtu
// created its chains. It returns what it did or why not, in the README's
// words, and "" when there is nothing to say (the table is gone already).
//
// With nf_tables, iptables-nft makes the table on first use and never
// deletes it, so plain iptables-save would show an empty *mangle after
// revert. The table is deleted with nft, and only when it holds nothing but
// empty base chains with the accept policy, so nobody's rule goes with it.
// A legacy table cannot be deleted at all: the kernel makes it on first use
// in each namespace and keeps it until the namespace ends; it holds no
// rules and lets every packet pass.
func RemoveCreatedTable(r Runner, b Backend, f Family) (string, error) {
	name := f.nftFamily() + " " + Mangle
	if b == Legacy {
		return fmt.Sprintf("the empty %s-legacy %s table stays: legacy tables cannot be deleted, they go with the namespace (no rules, every packet passes)", f.Tool(), Mangle), nil
	}
	if _, err := r.Resolve("nft"); err != nil {
		return fmt.Sprintf("the empty table %s stays: nft is not installed to delete it (apt install nftables)", name), nil
	}
	out, err := r.Run("nft", []string{"-j", "list", "table", f.nftFamily(), Mangle}, "")
	if err != nil {
		if strings.Contains(err.Error(), "No such file or directory") {
			return "", nil
		}
		return "", fmt.Errorf("nft list table %s: %w", name, err)
	}
	empty, err := EmptyNFTTable(out)
	if err != nil {
		return "", fmt.Errorf("nft list table %s: %w", name, err)
	}
	if !empty {
		return fmt.Sprintf("table %s stays: it holds rules or chains of someone else now", name), nil
	}
	if _, err := r.Run("nft", []string{"delete", "table", f.nftFamily(), Mangle}, ""); err != nil {
		return "", fmt.Errorf("nft delete table %s: %w", name, err)
	}
	return fmt.Sprintf("nft: deleted the empty table %s (it did not exist before wslmtu)", name), nil
}

// EmptyNFTTable says whether `nft -j list table …` shows a table holding
// only base chains with the accept policy and nothing else: no rule, no
// user chain, no set, map, flowtable or stateful object.
func EmptyNFTTable(listing string) (bool, error) {
	var doc struct {
		Items []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(listing), &doc); err != nil {
		return false, err
	}
	for _, item := range doc.Items {
		for kind, raw := range item {
			switch kind {
			case "metainfo", "table":
			case "chain":
				var c struct {
					Hook   string `json:"hook"`
					Policy string `json:"policy"`
				}
				if err := json.Unmarshal(raw, &c); err != nil {
					return false, err
				}
				if c.Hook == "" || c.Policy != "accept" {
					return false, nil
				}
			default:
				return false, nil
			}
		}
	}
	return true, nil
}
