package conductor

import (
	"testing"
)

func TestStepsOfEveryKind(t *testing.T) {
	for name, k := range kinds {
		if k.event == "" || k.fail == nil {
			t.Errorf("%s: no event or failure outcome", name)
		}
		seen := map[string]bool{}
		for _, s := range k.steps {
			if s.name == "" || s.run == nil || seen[s.name] {
				t.Errorf("%s: bad step %q", name, s.name)
			}
			seen[s.name] = true
		}
	}
}
