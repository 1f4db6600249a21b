package bench

import "errors"

// Plot is filled in below.
func Plot(reps []*Report, title string) ([]byte, error) { return nil, errors.New("todo") }
