package bus

import (
	"encoding/json"
	"testing"
)

func TestParseVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Version
		wantErr bool
	}{
		{in: "1.3", want: V(1, 3)},
		{in: "0.0", want: V(0, 0)},
		{in: "12.345", want: V(12, 345)},
		{in: "01.2", want: V(1, 2)},
		{in: "", wantErr: true},
		{in: "1", wantErr: true},
		{in: "1.", wantErr: true},
		{in: ".1", wantErr: true},
		{in: "1.2.3", wantErr: true},
		{in: "v1.2", wantErr: true},
		{in: "-1.2", wantErr: true},
		{in: "+1.2", wantErr: true},
		{in: "1. 2", wantErr: true},
		{in: "1.x", wantErr: true},
		{in: "9999999999.1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseVersion(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseVersion(%q) err = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("ParseVersion(%q) = %v, want %v", tc.in, got, tc.want)
			}
			if err == nil {
				// Round trip through the canonical form.
				if again, err := ParseVersion(got.String()); err != nil || again != got {
					t.Fatalf("ParseVersion(%q) = %v, %v", got.String(), again, err)
				}
			}
		})
	}
}

func TestVersionString(t *testing.T) {
	t.Parallel()
	if got := V(1, 3).String(); got != "1.3" {
		t.Fatalf("String() = %q", got)
	}
}

func TestVersionAcceptsAndCompare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		max, msg Version
		accepts  bool
		cmp      int // max.Compare(msg)
	}{
		{V(1, 3), V(1, 3), true, 0},
		{V(1, 3), V(1, 0), true, 1},
		{V(1, 3), V(1, 4), false, -1},
		{V(1, 3), V(2, 0), false, -1},
		{V(2, 0), V(1, 9), false, 1},
		{V(0, 1), V(0, 0), true, 1},
	}
	for _, tc := range tests {
		if got := tc.max.Accepts(tc.msg); got != tc.accepts {
			t.Errorf("%v.Accepts(%v) = %v, want %v", tc.max, tc.msg, got, tc.accepts)
		}
		if got := tc.max.Compare(tc.msg); got != tc.cmp {
			t.Errorf("%v.Compare(%v) = %v, want %v", tc.max, tc.msg, got, tc.cmp)
		}
		if got := tc.msg.Compare(tc.max); got != -tc.cmp {
			t.Errorf("%v.Compare(%v) = %v, want %v", tc.msg, tc.max, got, -tc.cmp)
		}
	}
}

func TestVersionJSON(t *testing.T) {
	t.Parallel()
	type doc struct {
		V Version `json:"v"`
	}
	b, err := json.Marshal(doc{V(2, 7)})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"v":"2.7"}` {
		t.Fatalf("marshal = %s", b)
	}
	var d doc
	if err := json.Unmarshal(b, &d); err != nil || d.V != V(2, 7) {
		t.Fatalf("unmarshal = %v, %v", d.V, err)
	}
	if err := json.Unmarshal([]byte(`{"v":"2"}`), &d); err == nil {
		t.Fatal("unmarshal of bad version succeeded")
	}
}
