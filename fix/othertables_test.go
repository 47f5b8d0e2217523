package fix

import (
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

// The agent keeps only the routes it acts on and lists the other tables in
// use: a table listed there is as taken as one whose routes are listed.
func TestPlanPolicyAvoidsOtherTables(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	st := observe(t, k, "nat", config.Default())
	st.OtherTables = []int{5200, 5201}
	got := changeText(NewPlan(st, newRecord(), config.Default()))
	if !strings.Contains(got, "lookup 5202: add") || strings.Contains(got, "lookup 5200") {
		t.Errorf("plan:\n%s", got)
	}
}
