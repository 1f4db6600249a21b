package states

import "testing"

func TestStatusRoundTrip(t *testing.T) {
	rb, rs := Rebooting, ResizePrep
	for _, tc := range []struct {
		vm   string
		task *string
		want string
	}{
		{Building, nil, "BUILD"}, {Active, nil, "ACTIVE"}, {Active, &rb, "REBOOT"}, {Stopped, nil, "SHUTOFF"},
		{Active, &rs, "RESIZE"}, {Resized, nil, "VERIFY_RESIZE"}, {Error, nil, "ERROR"},
		{ShelvedOffloaded, nil, "SHELVED_OFFLOADED"}, {Rescued, nil, "RESCUE"},
	} {
		if got := Status(tc.vm, tc.task); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.vm, got, tc.want)
		}
		vms, _, ok := ForStatus(tc.want)
		if !ok || len(vms) == 0 {
			t.Errorf("ForStatus(%s) unknown", tc.want)
		}
	}
	if _, _, ok := ForStatus("NOPE"); ok {
		t.Error("unknown status accepted")
	}
}
