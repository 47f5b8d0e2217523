package logbuf

import (
	"sync"
	"testing"
)

func TestConcurrentWritesAndReads(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Printf("x")
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if b.Len() != 4*100*2 {
		t.Fatalf("Len = %d, want %d", b.Len(), 4*100*2)
	}
}

func TestSinceTailPrintf(t *testing.T) {
	var b Buffer
	b.Printf("one %d", 1)
	mark := b.Len()
	b.Printf("two\n")
	b.Printf("three")
	if got := b.Since(mark); got != "two\nthree\n" {
		t.Errorf("Since = %q", got)
	}
	if got := b.Tail(2); got != "two\nthree" {
		t.Errorf("Tail(2) = %q", got)
	}
	if got := b.Tail(9); got != "one 1\ntwo\nthree" {
		t.Errorf("Tail(9) = %q", got)
	}
}
