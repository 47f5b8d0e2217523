package agent

import (
	"testing"
	"time"
)

func TestJitterStaysWithinTenPercent(t *testing.T) {
	for range 1000 {
		if d := jitter(15 * time.Minute); d < 810*time.Second || d > 990*time.Second {
			t.Fatalf("jitter(15m) = %s, outside ±10%%", d)
		}
	}
}
