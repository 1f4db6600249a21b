package bus

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is the schema version of one message type, written "major.minor"
// on the wire (for example "1.3"). See the package documentation for the
// compatibility rules.
type Version struct {
	Major int
	Minor int
}

// V is shorthand for Version{Major: major, Minor: minor}.
func V(major, minor int) Version { return Version{Major: major, Minor: minor} }

// String returns the wire form, "major.minor".
func (v Version) String() string {
	return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor)
}

// ParseVersion parses the wire form "major.minor". Both parts are required
// and must be non-negative decimal integers without signs or spaces.
func ParseVersion(s string) (Version, error) {
	maj, min, ok := strings.Cut(s, ".")
	if !ok {
		return Version{}, fmt.Errorf("bus: invalid version %q: want major.minor", s)
	}
	ma, err1 := parseVersionPart(maj)
	mi, err2 := parseVersionPart(min)
	if err1 != nil || err2 != nil {
		return Version{}, fmt.Errorf("bus: invalid version %q: want major.minor", s)
	}
	return Version{Major: ma, Minor: mi}, nil
}

func parseVersionPart(s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.Atoi(s)
}

// Compare returns -1, 0 or +1 ordering by major, then minor.
func (v Version) Compare(o Version) int {
	switch {
	case v.Major != o.Major:
		if v.Major < o.Major {
			return -1
		}
		return 1
	case v.Minor != o.Minor:
		if v.Minor < o.Minor {
			return -1
		}
		return 1
	}
	return 0
}

// Less reports whether v orders before o.
func (v Version) Less(o Version) bool { return v.Compare(o) < 0 }

// Accepts reports whether a receiver whose highest understood version is
// v can handle a message of version m: same major, and m.Minor <= v.Minor.
func (v Version) Accepts(m Version) bool {
	return m.Major == v.Major && m.Minor <= v.Minor
}

// MarshalText implements encoding.TextMarshaler ("1.3").
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *Version) UnmarshalText(b []byte) error {
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}
