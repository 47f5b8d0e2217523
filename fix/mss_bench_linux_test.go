package fix

import (
	"testing"

	"github.com/wslmtu/wslmtu/internal/firewall"
)

// BenchmarkSyncFromClean is `fix --mss-clamp`'s firewall part on a namespace
// without any rules: choose the backend, read both families, create our
// chains with one iptables-restore per family. Each round starts clean
// (revert deletes the chains and the tables they brought).
// Run: go test ./fix -run '^$' -bench SyncFromClean -benchtime 30x
func BenchmarkSyncFromClean(b *testing.B) {
	ns := newMSSNS(b)
	r, err := ns.host.Plan(mssConfig())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		if _, err := ns.host.revertFirewall(); err != nil {
			b.Fatal(err)
		}
		p := r.Plan
		m := *p.MSS
		p.MSS = &m
		b.StartTimer()
		c, err := syncCopy(ns.host, p)
		if err != nil || len(c.Done) == 0 {
			b.Fatalf("sync from clean: %v, %v", c, err)
		}
	}
}

// BenchmarkCheckInSync is the periodic check with nothing to do on a
// firewall nobody touched since the last check: the nf_tables generation is
// unchanged, so nothing is read again; diff, find nothing.
// Run: go test ./fix -run '^$' -bench CheckInSync -benchtime 30x
func BenchmarkCheckInSync(b *testing.B) {
	benchmarkCheckInSync(b, func(*mssNS) {})
}

// BenchmarkCheckInSyncAfterAChange is the same check after someone else
// changed the firewall (a rule added to and deleted from filter INPUT,
// outside the timer): the recorded backend's two saves are read, diffed,
// nothing of ours is found to differ.
// Run: go test ./fix -run '^$' -bench CheckInSyncAfterAChange -benchtime 30x
func BenchmarkCheckInSyncAfterAChange(b *testing.B) {
	benchmarkCheckInSync(b, func(ns *mssNS) {
		ns.run(b, "iptables-nft", "-A", "INPUT", "-j", "ACCEPT")
		ns.run(b, "iptables-nft", "-D", "INPUT", "-j", "ACCEPT")
	})
}

func benchmarkCheckInSync(b *testing.B, between func(*mssNS)) {
	ns := newMSSNS(b)
	r, err := ns.host.Plan(mssConfig())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := syncCopy(ns.host, r.Plan); err != nil {
		b.Fatal(err)
	}
	ns.host.Backend = firewall.NFT
	for b.Loop() {
		b.StopTimer()
		between(ns)
		p := r.Plan
		m := *p.MSS
		p.MSS = &m
		b.StartTimer()
		ns.host.checkFirewall(&p)
		if p.MSS.State != MSSInSync {
			b.Fatalf("state %q (%s)", p.MSS.State, p.MSS.Detail)
		}
	}
}
